//! Replays every committed fuzz input (`fuzz/corpus/<target>/*`) through its target on
//! stable, so the properties the fuzzer checked, and every crash it found, are checked
//! again by `cargo test`. Then a short seeded random-mutation pass over the same seeds
//! (`COURIER_FUZZ_MUTATIONS` per file, default 64; the seed is printed on failure).

use std::path::{Path, PathBuf};
use std::time::Instant;

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).expect("readable");
            (path, bytes)
        })
        .collect()
}

/// Runs `input` through `target`, naming the input if a property fails.
fn run(name: &str, target: fn(&[u8]), label: &str, input: &[u8]) {
    let outcome = std::panic::catch_unwind(|| target(input));
    if let Err(panic) = outcome {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        panic!(
            "{name}: {label} ({} bytes, {:?}) failed: {message}",
            input.len(),
            String::from_utf8_lossy(&input[..input.len().min(200)])
        );
    }
}

#[test]
fn every_committed_input_passes_its_target() {
    for (name, target) in courier_fuzz::TARGETS {
        let started = Instant::now();
        let files = inputs(name);
        assert!(!files.is_empty(), "{name}: no committed seeds");
        for (path, bytes) in &files {
            run(name, target, &path.display().to_string(), bytes);
        }
        println!(
            "{name}: {} inputs replayed in {:?}",
            files.len(),
            started.elapsed()
        );
    }
}

/// xorshift64*: a tiny deterministic generator, so a failure replays from its seed.
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

/// One libFuzzer-like mutation: flip, set, insert, delete or duplicate bytes.
fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    const INTERESTING: &[u8] = b"\0\x01\x7f\x80\xff\"\\{}[],:.=;/ \n0123456789aAzZ%+-_*";
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(5) {
            0 if at < input.len() => input[at] ^= 1 << rng.below(8),
            1 if at < input.len() => input[at] = INTERESTING[rng.below(INTERESTING.len())],
            2 => input.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            3 if at < input.len() => {
                let end = (at + 1 + rng.below(8)).min(input.len());
                input.drain(at..end);
            }
            _ => {
                let end = (at + rng.below(16)).min(input.len());
                let copy = input[at..end].to_vec();
                let to = rng.below(input.len() + 1);
                input.splice(to..to, copy);
            }
        }
    }
}

#[test]
fn mutated_committed_inputs_pass_their_targets() {
    let per_file: usize = std::env::var("COURIER_FUZZ_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let seed: u64 = std::env::var("COURIER_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x00c0_0e1e_5eed);
    println!("mutation seed {seed} (COURIER_FUZZ_SEED), {per_file} per file");
    let mut rng = Rng(seed | 1);
    for (name, target) in courier_fuzz::TARGETS {
        let started = Instant::now();
        let files = inputs(name);
        for (path, bytes) in &files {
            for round in 0..per_file {
                let mut input = bytes.clone();
                mutate(&mut rng, &mut input);
                let label = format!(
                    "mutation {round} of {} (COURIER_FUZZ_SEED={seed})",
                    path.display()
                );
                run(name, target, &label, &input);
            }
        }
        println!(
            "{name}: {} mutants in {:?}",
            files.len() * per_file,
            started.elapsed()
        );
    }
}
