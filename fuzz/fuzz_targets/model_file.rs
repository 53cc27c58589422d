#![no_main]
static DIR: std::sync::LazyLock<tempfile::TempDir> =
    std::sync::LazyLock::new(|| tempfile::tempdir().expect("temporary directory"));

libfuzzer_sys::fuzz_target!(|data: &[u8]| watchpost::fuzzing::model_file(data, DIR.path()));
