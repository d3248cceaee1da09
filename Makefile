# `sam build` runs this Makefile (template.yaml: `BuildMethod: makefile`, `ContextPath: .`,
# `WorkingDirectory: .`): `make build-<LogicalId>` in the repository root, once per function, with
# ARTIFACTS_DIR set to where that function's `bootstrap` goes.
#
# The first target builds every function in ONE `cargo lambda build` (the shared crates compiled once,
# the LTO links run as many at a time as there are cores); the targets after it find everything built
# (cargo's fingerprints) and only copy. One build per function, as SAM's `rust-cargolambda` method
# does, took 2,043 s here; see docs/performance.md for this one.
#
# Run it sequentially (SAM's default): under `sam build --parallel` one target's cargo-lambda may
# rewrite a bootstrap while another target copies it.
#
# LATCHKEY_ARCH: arm64 (the template's default Architecture) or x86_64. SAM does not tell make the
# function's architecture: when you deploy with `Architecture=x86_64`, build with
# `LATCHKEY_ARCH=x86_64` too (scripts/sam-build sets both from SAM_ARCH).

LATCHKEY_ARCH ?= arm64
CARGO_LAMBDA ?= cargo lambda
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
FUNCTIONS := $(patsubst functions/%/Cargo.toml,%,$(wildcard functions/*/Cargo.toml))

ifeq ($(LATCHKEY_ARCH),arm64)
ARCH_FLAG := --arm64
else ifeq ($(LATCHKEY_ARCH),x86_64)
ARCH_FLAG := --x86-64
else
$(error LATCHKEY_ARCH must be arm64 or x86_64, not $(LATCHKEY_ARCH))
endif

.PHONY: lambdas
lambdas:
	$(CARGO_LAMBDA) build --release $(ARCH_FLAG) $(addprefix -p ,$(FUNCTIONS))

# build-DiscoveryFunction copies functions/discovery's bootstrap, build-ToolMcpFunction tool-mcp's:
# the logical id without `Function`, words joined with `-`, lower case (a test holds every function
# in template.yaml to this).
build-%Function: lambdas
	@test -n "$(ARTIFACTS_DIR)" || { echo "ARTIFACTS_DIR is not set (sam build sets it)" >&2; exit 1; }
	@bin=$$(echo '$*' | sed 's/\([a-z0-9]\)\([A-Z]\)/\1-\2/g' | tr 'A-Z' 'a-z'); \
	  test -f "$(TARGET_DIR)/lambda/$$bin/bootstrap" || { echo "no bootstrap for $* ($$bin)" >&2; exit 1; }; \
	  cp "$(TARGET_DIR)/lambda/$$bin/bootstrap" "$(ARTIFACTS_DIR)/bootstrap"
