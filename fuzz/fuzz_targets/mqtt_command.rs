#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| watchpost::fuzzing::mqtt_command(data));
