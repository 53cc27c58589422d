#![no_main]
// One outbox file for the whole run (a fresh one per input would time the filesystem).
static DIR: std::sync::LazyLock<tempfile::TempDir> =
    std::sync::LazyLock::new(|| tempfile::tempdir().expect("temporary directory"));

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    watchpost::fuzzing::outbox_row(data, &DIR.path().join("outbox.db"))
});
