//! The `cargo fuzz` targets (fuzz/) as bounded property tests: each target's body on its valid
//! seeds and on seeded random mutants of them (bit flips, interesting values, inserts, deletes,
//! splices). `OBFNET_FUZZ_CASES` sets the mutants per target (default 2000),
//! `OBFNET_FUZZ_SECONDS` a time budget per target instead (scripts/fuzz.sh uses it when no
//! nightly toolchain is there for libFuzzer), `OBFNET_FUZZ_SEED` the seed.

use obfnet_serve::fuzzing::{self, TARGETS};

fn cases() -> usize {
    std::env::var("OBFNET_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

fn seed() -> u64 {
    std::env::var("OBFNET_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_261_128)
}

fn run(name: &str) {
    let t = fuzzing::target(name).unwrap_or_else(|| panic!("no fuzz target {name}"));
    let started = std::time::Instant::now();
    let budget = std::env::var("OBFNET_FUZZ_SECONDS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .map(std::time::Duration::from_secs_f64);
    let cases = if budget.is_some() { usize::MAX } else { cases() };
    let ran = fuzzing::run(t, cases, seed(), budget.map(|b| started + b));
    eprintln!(
        "fuzz property {name}: {ran} mutants (seed {}) in {:.2} s, no crash",
        seed(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn every_target_is_tested() {
    let tested = [
        "bundle",
        "safetensors",
        "manifest",
        "idx",
        "wav",
        "oip_json",
        "oip_binary",
        "grpc_request",
        "mqtt_payload",
    ];
    for t in TARGETS {
        assert!(tested.contains(&t.name), "target {} has no property test", t.name);
    }
}

/// Crashes libFuzzer found, replayed through the target bodies (each fixed; see the comments).
#[test]
fn libfuzzer_regressions() {
    // `safetensors`, 2026-12-07 (`scripts/fuzz.sh 240`): a tensor named "" decoded but `encode`
    // refuses that name, so the file did not round-trip. `decode` now refuses it too.
    let crash = [
        "66000000000000007b22223a7b226474797065223a22463332222c227368617065223a5b385d2c22",
        "646174615f6f666673657473223a5b302c33325d7d0d0d0d0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a",
        "0a0a0a0a7d0a0a0a0a0a0a0a0a0a0a20202020202020202020202020202020202001000000002020",
        "000000000007000020202020010101796572302e7765",
    ]
    .concat();
    let bytes: Vec<u8> = (0..crash.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&crash[i..i + 2], 16).expect("hex"))
        .collect();
    assert_eq!(bytes.len(), 142);
    assert!(obfnet_core::safetensors::decode(&bytes).is_err());
    fuzzing::safetensors(&bytes);
}

#[test]
fn bundle() {
    run("bundle");
}

#[test]
fn safetensors() {
    run("safetensors");
}

#[test]
fn manifest() {
    run("manifest");
}

#[test]
fn idx() {
    run("idx");
}

#[test]
fn wav() {
    run("wav");
}

#[test]
fn oip_json() {
    run("oip_json");
}

#[test]
fn oip_binary() {
    run("oip_binary");
}

#[test]
fn grpc_request() {
    run("grpc_request");
}

#[test]
fn mqtt_payload() {
    run("mqtt_payload");
}
