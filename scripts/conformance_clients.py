#!/usr/bin/env python3
"""Run the official MCP conformance suite's `auth/*` CLIENT scenarios with latchkey as the client.

Starts `latchkey serve` (fresh data dir, one project), then for every `auth/*` scenario of the
2025-03-26, 2025-11-25 and 2026-07-28 revisions runs
`conformance client --command "python3 tests/conformance/tool_client.py" --scenario S --spec-version V`
with `--expected-failures tests/conformance/client-expected-failures.yml`, four at a time. Each
scenario starts its own MCP server and authorization server on localhost; the adapter registers the
server as a latchkey tool, authorizes and calls it through latchkey.

Prints one line per scenario and a total; exits non-zero on an unexpected failure or a stale
baseline entry. The `[extension]` scenarios (client credentials, enterprise-managed authorization,
DPoP, workload identity) are not run: latchkey's tools API has no grant for them. Usage: conformance_clients.py <latchkey binary> <node binary> <conformance dist/index.js>
"""
import concurrent.futures
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADAPTER = os.path.join(ROOT, "tests", "conformance", "tool_client.py")
BASELINE = os.path.join(ROOT, "tests", "conformance", "client-expected-failures.yml")

COMMON = [
    "auth/token-endpoint-auth-basic",
    "auth/token-endpoint-auth-post",
    "auth/token-endpoint-auth-none",
    "auth/metadata-default",
    "auth/metadata-var1",
    "auth/metadata-var2",
    "auth/metadata-var3",
    "auth/basic-cimd",
    "auth/scope-from-www-authenticate",
    "auth/scope-from-scopes-supported",
    "auth/scope-omitted-when-undefined",
    "auth/scope-step-up",
    "auth/scope-retry-limit",
    "auth/pre-registration",
]
ONLY_2026 = [
    "auth/resource-mismatch",
    "auth/offline-access-scope",
    "auth/offline-access-not-supported",
    "auth/authorization-server-migration",
    "auth/iss-supported",
    "auth/iss-not-advertised",
    "auth/iss-supported-missing",
    "auth/iss-wrong-issuer",
    "auth/iss-unexpected",
    "auth/iss-normalized",
    "auth/metadata-issuer-mismatch",
]
RUNS = (
    [(s, "2025-03-26") for s in ["auth/2025-03-26-oauth-metadata-backcompat", "auth/2025-03-26-oauth-endpoint-fallback"]]
    + [(s, "2025-11-25") for s in COMMON]
    + [(s, "2026-07-28") for s in COMMON + ONLY_2026]
)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(node, suite, scenario, version, env):
    cmd = [node, suite, "client", "--command", f"python3 {ADAPTER}", "--scenario", scenario,
           "--spec-version", version, "--timeout", "60000"]
    if os.path.exists(BASELINE):
        cmd += ["--expected-failures", BASELINE]
    started = time.time()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    out = proc.stdout + proc.stderr
    m = re.search(r"Passed: (\d+)/(\d+), (\d+) failed, (\d+) warnings", out)
    summary = f"{m.group(1)}/{m.group(2)} checks, {m.group(3)} failed, {m.group(4)} warnings" if m else "no summary"
    failed = [line.strip() for line in out.splitlines() if re.search(r"\b(FAILURE|WARNING)\b", line)]
    return scenario, version, proc.returncode, summary, failed, out, time.time() - started


def main():
    latchkey, node, suite = sys.argv[1:4]
    data_dir = tempfile.mkdtemp(prefix="latchkey-conformance-clients-")
    created = subprocess.run([latchkey, "project", "create", "conformance", "--json", "--data-dir", data_dir],
                             check=True, capture_output=True, text=True)
    api_key = json.loads(created.stdout)["api_key"]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = os.path.join(ROOT, ".cache", "conformance-clients-latchkey.log")
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    with open(log_path, "w") as log:
        server = subprocess.Popen([latchkey, "serve", "--data-dir", data_dir, "--addr", f"127.0.0.1:{port}"],
                                  stdout=log, stderr=log)
    results = []
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/.well-known/oauth-authorization-server", timeout=1)
                break
            except Exception:
                time.sleep(0.1)
        env = dict(os.environ, LATCHKEY_URL=base, LATCHKEY_API_KEY=api_key)
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(run, node, suite, s, v, env) for s, v in RUNS]
            for f in concurrent.futures.as_completed(futures):
                results.append(f.result())
    finally:
        server.terminate()
        server.wait()
    results.sort(key=lambda r: (r[1], r[0]))
    bad = 0
    details_dir = os.path.join(ROOT, ".cache", "conformance-clients")
    os.makedirs(details_dir, exist_ok=True)
    for scenario, version, code, summary, failed, out, secs in results:
        mark = "ok  " if code == 0 else "FAIL"
        print(f"{mark} {version} {scenario}: {summary} ({secs:.1f} s)")
        if code != 0:
            bad += 1
            for line in failed[:8]:
                print(f"       {line}")
        with open(os.path.join(details_dir, f"{version}_{scenario.replace('/', '_')}.txt"), "w") as fh:
            fh.write(out)
    print(f"conformance auth clients (latchkey as the client): {len(results) - bad} of {len(results)} runs as expected"
          f" (baseline: {os.path.relpath(BASELINE, ROOT)}; output in .cache/conformance-clients/)")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
