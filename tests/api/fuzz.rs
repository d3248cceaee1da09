//! The fuzz targets (`fuzz/src/targets.rs`) on the stable toolchain: a bounded property-based run of
//! each target on its seed corpus (`fuzz/corpus/<target>/`), then on mutations of it and random
//! bytes, for `LATCHKEY_FUZZ_SECONDS` seconds a target (default 1; `scripts/fuzz --stable N` sets
//! it). The libFuzzer binaries (`cargo fuzz`) run the same functions with coverage guidance. A
//! failing input is written to `target/fuzz-failures/<target>-<n>` and printed in hex.

#[path = "../../fuzz/src/targets.rs"]
mod targets;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A small deterministic PRNG (xorshift64*), seeded per target so a run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that matter to the parsers: separators, escapes, encodings, hosts.
const TOKENS: &[&[u8]] = &[
    b"&",
    b"=",
    b"+",
    b"%",
    b"%00",
    b"%2e",
    b"%2E",
    b"%2f",
    b"%5c",
    b"%ff",
    b"%C3%A9",
    b"..",
    b".",
    b"/",
    b"//",
    b"\\",
    b"@",
    b"#",
    b"?",
    b":",
    b";",
    b",",
    b"\"",
    b"\\\"",
    b" ",
    b"\t",
    b"\r\n",
    b"\0",
    b"\x7f",
    b"\xff",
    b"\xc3",
    b"{",
    b"}",
    b"[",
    b"]",
    b"\"a\":",
    b"null",
    b"1e999",
    b"-0",
    b"Basic ",
    b"Bearer ",
    b"https://",
    b"http://",
    b"127.0.0.1",
    b"[::1]",
    b"localhost",
    b"169.254.169.254",
    b"evil.example",
    b"::ffff:",
    b"scope=",
    b"resource_metadata=",
    b"lk_session=",
    b"__Host-lk_session=",
    b"\x01\x01\x00\x20",
    b"\x01\x02",
];

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>]) -> Vec<u8> {
    let mut data = if corpus.is_empty() || rng.below(8) == 0 {
        (0..rng.below(64)).map(|_| rng.next() as u8).collect()
    } else {
        corpus[rng.below(corpus.len())].clone()
    };
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let end = (at + 1 + rng.below(8)).min(data.len());
                data.drain(at.min(end)..end);
            }
            2 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, t.iter().copied());
            }
            3 if !corpus.is_empty() => {
                let other = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len() + 1);
                data.splice(at..at, other[from..].iter().copied());
            }
            4 if !data.is_empty() => {
                let i = rng.below(data.len());
                let b = data[i];
                data.splice(at..at, std::iter::repeat_n(b, 1 + rng.below(64)));
            }
            _ => data.insert(at, rng.next() as u8),
        }
    }
    data.truncate(4096);
    data
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = repo().join("fuzz/corpus").join(name);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

fn seconds() -> f64 {
    std::env::var("LATCHKEY_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0)
}

/// Run one target: every seed, then mutations until the time is up. Returns the executions.
fn run(name: &str) -> u64 {
    let (_, target) = targets::TARGETS.iter().find(|(n, _)| *n == name).unwrap();
    let seeds = corpus(name);
    assert!(!seeds.is_empty(), "no seed corpus for {name}");
    let check = |data: &[u8]| {
        if let Err(panic) = std::panic::catch_unwind(|| target(data)) {
            let dir = repo().join("target/fuzz-failures");
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(format!("{name}-{}", data.len()));
            std::fs::write(&file, data).unwrap();
            let hex: String = data.iter().map(|b| format!("{b:02x}")).collect();
            eprintln!(
                "{name}: failing input ({} bytes) written to {}: {hex}",
                data.len(),
                file.display()
            );
            std::panic::resume_unwind(panic);
        }
    };
    for s in &seeds {
        check(s);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.bytes().fold(0u64, |h, b| h.wrapping_mul(31) ^ b as u64));
    let budget = Duration::from_secs_f64(seconds());
    let start = Instant::now();
    let mut execs = seeds.len() as u64;
    while start.elapsed() < budget {
        for _ in 0..64 {
            check(&mutate(&mut rng, &seeds));
            execs += 1;
        }
    }
    eprintln!("fuzz {name}: {execs} executions in {:.1?}, no failure", start.elapsed());
    execs
}

macro_rules! fuzz_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                assert!(run(stringify!($name)) > 0);
            }
        )*

        #[test]
        fn every_target_has_a_stable_test_and_a_libfuzzer_binary() {
            let tested = [$(stringify!($name)),*];
            for (name, _) in targets::TARGETS {
                assert!(tested.contains(name), "{name} has no stable test");
                assert!(repo().join(format!("fuzz/fuzz_targets/{name}.rs")).exists(), "{name} has no libFuzzer binary");
            }
            assert_eq!(tested.len(), targets::TARGETS.len());
        }
    };
}

fuzz_tests!(
    form,
    json,
    basic_auth,
    cookie,
    redirect_uri,
    proxy_path,
    address_guard,
    www_authenticate,
    resource_metadata,
    envelope,
);
