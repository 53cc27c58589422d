#![no_main]
static DIR: std::sync::LazyLock<tempfile::TempDir> = std::sync::LazyLock::new(|| {
    // libFuzzer's hook aborts on every panic, even one `Detector::load` catches on purpose
    // (tract's reader panics on some malformed files); a panic that escapes the target is
    // still a crash: libfuzzer-sys catches it around the target and aborts.
    std::panic::set_hook(Box::new(|_| {}));
    tempfile::tempdir().expect("temporary directory")
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = watchpost::fuzzing::model_file(data, DIR.path());
});
