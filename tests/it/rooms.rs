//! The room check of `scripts/test` (docs/architecture.md): the library's rooms lean one way,
//! and the check itself sees a circle when there is one (also through a URL in a string,
//! which a naive comment stripper takes for a comment).

use crate::common::repo;
use std::process::Command;

fn rooms(src: &std::path::Path) -> (bool, String) {
    let out = Command::new("python3")
        .arg(repo().join("scripts/rooms.py"))
        .arg("--src")
        .arg(src)
        .output()
        .expect("python3 runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn the_library_has_no_circle_between_rooms() {
    let (ok, out) = rooms(&repo().join("src"));
    assert!(ok, "{out}");
    assert!(out.contains("no circles between rooms"), "{out}");
    // config is a leaf apart from the pure helpers it checks values with.
    let config = out
        .lines()
        .find(|l| l.trim_start().starts_with("config "))
        .expect("config room listed");
    assert!(
        config.ends_with("-> template"),
        "config uses more than the leaf helpers: {config}"
    );
}

#[test]
fn a_circle_is_found_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("config")).unwrap();
    std::fs::write(src.join("lib.rs"), "pub mod config;\npub mod deliver;\n").unwrap();
    // The arrow back hides behind a string holding `//`.
    std::fs::write(
        src.join("config/mod.rs"),
        "const URL: &str = \"mqtt://broker\"; pub fn f() { crate::deliver::g() }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("deliver.rs"),
        "use crate::config::f;\npub fn g() {}\n",
    )
    .unwrap();
    let (ok, out) = rooms(&src);
    assert!(!ok, "a circle must fail the check:\n{out}");
    assert!(out.contains("circle: config <-> deliver"), "{out}");
    // The arrow back, with the file and the name behind it.
    assert!(out.contains("config -> deliver:"), "{out}");
    assert!(out.contains("config/mod.rs (g)"), "{out}");
}
