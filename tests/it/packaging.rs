//! What ships onto gateways: the systemd unit (verified and hardened), the Debian package's
//! contents, and the Yocto layer (lint clean, crates in step with Cargo.lock, licence
//! checksums right).

use crate::common::{bin, repo};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// The unit with its binary paths pointed at this build, as `systemd-analyze verify` needs
/// the ExecStart binary to exist.
fn unit_for_this_build(dir: &Path) -> PathBuf {
    let unit = std::fs::read_to_string(repo().join("systemd/watchpost.service")).unwrap();
    let path = dir.join("watchpost.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/watchpost", &bin().display().to_string()),
    )
    .unwrap();
    path
}

#[test]
fn the_systemd_unit_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_this_build(dir.path());
    let out = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .current_dir(dir.path()));
    let said = text(&out);
    assert!(out.status.success(), "systemd-analyze verify:\n{said}");
    // verify exits 0 on some warnings; none may be about our unit.
    assert!(
        !said.contains("watchpost.service:"),
        "systemd-analyze verify complains:\n{said}"
    );
    let unit_text = std::fs::read_to_string(&unit).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "StateDirectory=watchpost",
        "User=watchpost",
    ] {
        assert!(unit_text.contains(line), "unit lacks {line}");
    }
}

#[test]
fn the_systemd_unit_is_hardened_to_an_exposure_of_at_most_2_5() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_for_this_build(dir.path());
    let out = run(Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .current_dir(dir.path()));
    let said = text(&out);
    let score: f64 = said
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for watchpost.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{said}"));
    println!("systemd-analyze security: exposure {score}");
    assert!(score <= 2.5, "exposure {score} > 2.5:\n{said}");
}

#[test]
fn the_yocto_crates_include_matches_cargo_lock() {
    let out = run(Command::new("python3")
        .arg(repo().join("scripts/yocto-crates"))
        .arg("--check"));
    assert!(out.status.success(), "{}", text(&out));
    // And the check itself notices a change.
    let inc = repo().join("yocto/meta-watchpost/recipes-watchpost/watchpost/watchpost-crates.inc");
    let lock = std::fs::read_to_string(repo().join("Cargo.lock")).unwrap();
    let first = lock
        .lines()
        .find(|l| l.starts_with("checksum = "))
        .expect("a registry crate");
    let checksum = first.trim_start_matches("checksum = ").trim_matches('"');
    assert!(
        std::fs::read_to_string(inc).unwrap().contains(checksum),
        "the include carries Cargo.lock's checksums"
    );
}

#[test]
fn the_yocto_layer_lints_clean_for_scarthgap() {
    let layer = repo().join("yocto/meta-watchpost");
    let recipes: Vec<PathBuf> = [
        "recipes-watchpost/watchpost",
        "recipes-watchpost/packagegroups",
    ]
    .iter()
    .flat_map(|d| std::fs::read_dir(layer.join(d)).unwrap())
    .map(|e| e.unwrap().path())
    .filter(|p| p.extension().is_some_and(|e| e == "bb"))
    .collect();
    assert_eq!(recipes.len(), 2, "the recipe and the packagegroup");
    // Only the rule that pings HOMEPAGE over the network is suppressed.
    let out = run(Command::new("oelint-adv")
        .args([
            "--quiet",
            "--release=scarthgap",
            "--suppress",
            "oelint.vars.homepageping",
        ])
        .args(&recipes));
    let findings: Vec<String> = text(&out)
        .lines()
        .filter(|l| l.contains(":info:") || l.contains(":warning:") || l.contains(":error:"))
        .map(str::to_string)
        .collect();
    assert!(
        out.status.success() && findings.is_empty(),
        "oelint-adv:\n{}",
        findings.join("\n")
    );
    let conf = std::fs::read_to_string(layer.join("conf/layer.conf")).unwrap();
    assert!(conf.contains("LAYERSERIES_COMPAT_watchpost = \"scarthgap\""));
}

#[test]
fn the_recipe_licence_checksums_are_right() {
    let recipe = std::fs::read_to_string(
        repo().join("yocto/meta-watchpost/recipes-watchpost/watchpost/watchpost_0.1.0.bb"),
    )
    .unwrap();
    let mut checked = 0;
    for part in recipe.split("file://").skip(1) {
        let Some((file, rest)) = part.split_once(";md5=") else {
            continue;
        };
        let want: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
        let out = run(Command::new("md5sum").arg(repo().join(file)));
        let got = text(&out);
        assert!(
            got.starts_with(&want),
            "{file}: recipe says md5 {want}, file has {got}"
        );
        checked += 1;
    }
    assert_eq!(checked, 2, "LICENSE and the models' licence");
}

/// `cargo deb` on the binary this test run built (scripts/package-deb builds the release one).
#[test]
fn the_debian_package_holds_binary_unit_conffile_model_and_licences() {
    let dir = tempfile::tempdir().unwrap();
    let target_dir = bin()
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/watchpost")
        .to_path_buf();
    let out = run(Command::new("cargo")
        .args([
            "deb",
            "--no-build",
            "--profile",
            "dev",
            "--fast",
            "--output",
        ])
        .arg(dir.path())
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(repo()));
    assert!(out.status.success(), "cargo deb:\n{}", text(&out));
    let deb = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("a .deb");

    let listing = text(&run(Command::new("dpkg-deb").arg("-c").arg(&deb)));
    for path in [
        "./usr/bin/watchpost",
        "/systemd/system/watchpost.service",
        "./etc/watchpost/watchpost.toml",
        "./usr/lib/sysusers.d/watchpost.conf",
        "./usr/share/watchpost/models/ssdlite-mnv2-300.onnx",
        "./usr/share/watchpost/models/coco80.txt",
        "./usr/share/doc/watchpost/copyright",
        "./usr/share/doc/watchpost/LICENSE-Apache-2.0.txt",
        "./usr/share/doc/watchpost/MODELS.md",
    ] {
        assert!(
            listing.contains(path),
            "{path} missing from the .deb:\n{listing}"
        );
    }

    let control = dir.path().join("control");
    let out = run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&control));
    assert!(out.status.success(), "{}", text(&out));
    let conffiles = std::fs::read_to_string(control.join("conffiles")).unwrap();
    assert!(
        conffiles
            .lines()
            .any(|l| l == "/etc/watchpost/watchpost.toml"),
        "conffiles: {conffiles}"
    );
    let fields = std::fs::read_to_string(control.join("control")).unwrap();
    let depends = fields
        .lines()
        .find(|l| l.starts_with("Depends:"))
        .unwrap_or_default();
    for dep in [
        "libgstreamer1.0-0",
        "gstreamer1.0-plugins-good",
        "gstreamer1.0-libav",
    ] {
        assert!(depends.contains(dep), "Depends lacks {dep}: {depends}");
    }
    let postinst = std::fs::read_to_string(control.join("postinst")).unwrap();
    assert!(postinst.contains("systemd-sysusers watchpost.conf"));
    assert!(
        postinst.contains("deb-systemd-helper") || postinst.contains("systemctl"),
        "postinst enables the unit:\n{postinst}"
    );

    // The shipped default config is valid as shipped (paths pointed at the unpacked tree).
    let root = dir.path().join("root");
    let out = run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    assert!(out.status.success(), "{}", text(&out));
    let config = std::fs::read_to_string(root.join("etc/watchpost/watchpost.toml"))
        .unwrap()
        .replace(
            "/usr/share/watchpost",
            &root.join("usr/share/watchpost").display().to_string(),
        )
        .replace(
            "/var/lib/watchpost",
            &dir.path().join("state").display().to_string(),
        );
    let cfg_path = dir.path().join("watchpost.toml");
    std::fs::write(&cfg_path, config).unwrap();
    let out = run(Command::new(root.join("usr/bin/watchpost"))
        .arg("check-config")
        .arg(&cfg_path));
    assert!(out.status.success(), "default config: {}", text(&out));
}

#[test]
fn the_console_unit_verifies_and_its_sample_config_checks() {
    let dir = tempfile::tempdir().unwrap();
    let console = bin().with_file_name("watchpost-console");
    assert!(
        console.is_file(),
        "build watchpost-console first (scripts/test does)"
    );
    let unit = std::fs::read_to_string(repo().join("console/systemd/watchpost-console.service"))
        .unwrap()
        .replace("/usr/bin/watchpost-console", &console.display().to_string());
    let path = dir.path().join("watchpost-console.service");
    std::fs::write(&path, &unit).unwrap();
    let out = run(Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .current_dir(dir.path()));
    let said = text(&out);
    assert!(out.status.success(), "systemd-analyze verify:\n{said}");
    assert!(
        !said.contains("watchpost-console.service:"),
        "systemd-analyze verify complains:\n{said}"
    );
    for line in [
        "DynamicUser=yes",
        "StateDirectory=watchpost-console",
        "Restart=on-failure",
    ] {
        assert!(unit.contains(line), "unit lacks {line}");
    }
    // The sample config is valid as shipped, and a typo in it is named with its line.
    let sample = repo().join("console/watchpost-console.toml");
    let ok = run(Command::new(&console).arg("check-config").arg(&sample));
    assert!(ok.status.success(), "{}", text(&ok));
    let bad = dir.path().join("bad.toml");
    let broken = std::fs::read_to_string(&sample)
        .unwrap()
        .replace("retention_days = 30", "retention_dayz = 30");
    std::fs::write(&bad, broken).unwrap();
    let refused = run(Command::new(&console).arg("check-config").arg(&bad));
    assert!(!refused.status.success());
    let said = text(&refused);
    let line = std::fs::read_to_string(&bad)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("retention_dayz"))
        .unwrap()
        + 1;
    assert!(
        said.contains(&format!("bad.toml:{line}:")) && said.contains("retention_dayz"),
        "{said}"
    );
}
