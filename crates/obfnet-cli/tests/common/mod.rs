//! Helpers shared by the CLI test binaries (`tests.rs`, `onnx.rs`).

use assert_cmd::Command;

/// The `obfnet` binary, without the caller's `OBFNET_DATA_DIR` (each test names its data).
pub fn obfnet() -> Command {
    let mut cmd = Command::cargo_bin("obfnet").expect("binary");
    cmd.env_remove("OBFNET_DATA_DIR");
    cmd
}

/// The JSON a verb printed with `--json` (panics, showing the text, if it is not JSON).
pub fn json_of(out: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(out);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Tiny budgets for `attack` / `report` (the standard suite): the CLI tests check that the
/// pipeline runs end to end, not the attacks' strength (tested in obfnet-privacy).
pub const TINY: [&str; 24] = [
    "--preset",
    "standard",
    "--eval-samples",
    "20",
    "--rmle-samples",
    "5",
    "--rmle-steps",
    "10",
    "--inverse-train",
    "200",
    "--per-net-train",
    "100",
    "--inverse-epochs",
    "1",
    "--inverse-hidden",
    "64",
    "--shadow-train",
    "100",
    "--distinguisher-train",
    "100",
    "--recogniser-epochs",
    "1",
    "--seed",
    "3",
];
