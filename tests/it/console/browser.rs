//! The fleet page, driven in Debian's Chromium by playwright-core (tests/browser/console.mjs).

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_page_works_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let mqtt_port = free_port();
    let _broker = common::mosquitto(dir.path(), mqtt_port);
    let console = Console::start(&dir.path().join("console"), mqtt_port, None, "r1");
    let _ = console.client().await;
    assert!(
        wait_until(Duration::from_secs(10), || console.setup_code().is_some()).await,
        "{}",
        console.log()
    );
    let artifacts = repo().join("target/test-artifacts/console-browser");
    let _ = std::fs::remove_dir_all(&artifacts);
    std::fs::create_dir_all(&artifacts).unwrap();
    let (stdout, stderr) = (artifacts.join("node.out"), artifacts.join("node.err"));
    let node = std::process::Command::new("node")
        .arg(repo().join("tests/browser/console.mjs"))
        .env("CONSOLE_URL", console.url("/"))
        .env("SETUP_CODE", console.setup_code().unwrap())
        .env("ARTIFACTS", &artifacts)
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .expect("node (scripts/setup installs nodejs, chromium, playwright-core)");
    let mut node = Child(node);
    // The page enrols gw-north; its key comes back through a file and the gateways start.
    let key_file = artifacts.join("key.txt");
    assert!(
        wait_until(Duration::from_secs(60), || key_file.is_file()).await,
        "the page did not enrol a gateway"
    );
    let key = std::fs::read_to_string(&key_file).unwrap();
    let _north = Gateway::start_with(
        dir.path(),
        "gw-north",
        "north",
        mqtt_port,
        true,
        key.trim(),
        "",
    );
    let _south = Gateway::start(dir.path(), "gw-south", "south", mqtt_port, false);
    // Every wait inside the script is bounded; this bounds the whole run as well.
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(status) = node.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the browser script ran past 300 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(
        status.success(),
        "{}{}\nscreenshots in {}\nconsole log:\n{}",
        read(&stdout),
        read(&stderr),
        artifacts.display(),
        console.log()
    );
    for shot in [
        "1-enrol.png",
        "2-fleet.png",
        "3-gateway.png",
        "4-pushed.png",
        "5-viewer.png",
    ] {
        assert!(artifacts.join(shot).is_file(), "no screenshot {shot}");
    }
}
