#![no_main]
// The body is shared with the property test `fuzz_props::oip_binary` (obfnet-serve/src/fuzzing.rs).
libfuzzer_sys::fuzz_target!(|data: &[u8]| obfnet_serve::fuzzing::oip_rest(data));
