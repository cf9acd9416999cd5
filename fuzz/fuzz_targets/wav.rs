#![no_main]
// The body is shared with the property test `fuzz_props::wav` (obfnet-serve/src/fuzzing.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| obfnet_serve::fuzzing::wav(data));
