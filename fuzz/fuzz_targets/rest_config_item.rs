#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| watchpost::fuzzing::rest_config_item(data));
