//! The stable smoke run of a fuzz target, included with `#[path]` by
//! `crates/fuzz-support/tests/smoke.rs` (this crate is nightly-only): the
//! target's committed seeds (`fuzz/seeds/<target>/`), then deterministic mutations of
//! them, each fed to the same entry point the fuzz target calls. A failing input is
//! printed (escaped and hex) with its number, so it can be saved as a seed and replayed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

/// Runs `entry` over the seeds of `target` and `mutations` inputs made from them.
/// Returns how many inputs were run.
pub fn run(target: &str, mutations: usize, entry: fn(&[u8])) -> usize {
    let seeds = seeds(target);
    assert!(!seeds.is_empty(), "no seeds for {target}");
    for (index, seed) in seeds.iter().enumerate() {
        feed(target, &format!("seed {index}"), seed, entry);
    }
    // Fixed per target, so a failure reproduces on every run.
    let mut rng = Rng(target
        .bytes()
        .fold(0x5eed_u64, |h, b| h.rotate_left(5) ^ u64::from(b)));
    for index in 0..mutations {
        let input = mutate(&seeds, &mut rng);
        feed(target, &format!("mutation {index}"), &input, entry);
    }
    seeds.len() + mutations
}

fn feed(target: &str, what: &str, input: &[u8], entry: fn(&[u8])) {
    if let Err(panic) = catch_unwind(AssertUnwindSafe(|| entry(input))) {
        let message = panic
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| panic.downcast_ref::<&str>().copied())
            .unwrap_or("(no message)");
        let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
        panic!(
            "{target}: {what} failed: {message}\ninput: {:?}\nhex: {hex}",
            String::from_utf8_lossy(input)
        );
    }
}

/// The seed files of `target`, in name order.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds")
        .join(target);
    let mut paths: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(error) => panic!("cannot read {}: {error}", dir.display()),
    };
    paths.sort();
    paths
        .iter()
        .map(|path| match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) => panic!("cannot read {}: {error}", path.display()),
        })
        .collect()
}

/// splitmix64: small, fast and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Tokens that change what a parser sees: delimiters, numbers at the edges, escapes.
const TOKENS: [&[u8]; 22] = [
    b"\"",
    b"{",
    b"}",
    b"[",
    b"]",
    b",",
    b":",
    b"=",
    b"\n",
    b"null",
    b"true",
    b"-1",
    b"0",
    b"4294967296",
    b"18446744073709551616",
    b"1e999",
    b"-0.0",
    b"\\u0000",
    b"\\ud800",
    b"\xff",
    b"[[x]]",
    b"\"\"\"",
];

fn mutate(seeds: &[Vec<u8>], rng: &mut Rng) -> Vec<u8> {
    // Now and then pure noise, to reach what no seed resembles.
    if rng.below(10) == 0 {
        let len = rng.below(64);
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..=rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(8) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] = rng.next() as u8;
            }
            2 => data.insert(at, rng.next() as u8),
            3 if at < data.len() => {
                let end = (at + 1 + rng.below(16)).min(data.len());
                data.drain(at..end);
            }
            4 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, token.iter().copied());
            }
            5 if at < data.len() => {
                let end = (at + 1 + rng.below(32)).min(data.len());
                let copy = data[at..end].to_vec();
                let to = rng.below(data.len() + 1);
                data.splice(to..to, copy);
            }
            6 => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len() + 1);
                data.truncate(at);
                data.extend_from_slice(&other[from..]);
            }
            _ => data.truncate(at),
        }
    }
    data
}
