//! `watchpost-bench ingest` (scripts/bench-ingest): what ingest alone costs per camera.
//!
//! N cameras read one 720p H.264 clip from GStreamer's RTSP server, which runs in a child
//! process of this binary so that its CPU is not counted as ingest (it is reported beside).
//! The detector is a no-op that takes every frame at once. CPU is read from /proc (user +
//! system ticks of the whole process, all threads), as a share of the whole box.

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use watchpost::config::{CameraConfig, Secret, Transport};
use watchpost::video::{CameraState, Cameras, IngestOptions, LatestFrames};

/// Serves `clip` until stdin closes (the parent ended), printing the URL first.
pub fn serve(clip: &Path) -> Result<()> {
    let server = watchpost::demo::RtspClipServer::start(clip, 0)?;
    println!("{}", server.url());
    let mut sink = String::new();
    while std::io::stdin().read_line(&mut sink).unwrap_or(0) > 0 {}
    Ok(())
}

/// User + system CPU seconds of process `pid` so far. `/proc/<pid>/stat` counts in
/// USER_HZ, which is 100 on every Linux architecture the gateways run.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at state, field 3.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("odd /proc stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks =
        |i: usize| -> Result<f64> { Ok(f.get(i - 3).context("short stat")?.parse::<f64>()?) };
    Ok((ticks(14)? + ticks(15)?) / 100.0)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A server process per measurement: rtsp-server 1.22 does not always hand a shared media
/// that its last client left to new clients in a playing state.
fn start_server(clip: &Path) -> Result<(Server, String)> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["ingest", "--serve"])
        .arg(clip)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the RTSP server process")?;
    let mut url = String::new();
    BufReader::new(child.stdout.take().context("no server stdout")?).read_line(&mut url)?;
    let server = Server(child);
    let url = url.trim().to_string();
    if !url.starts_with("rtsp://") {
        bail!("the RTSP server process did not start (got {url:?})");
    }
    Ok((server, url))
}

struct Point {
    cams: usize,
    keyframes_only: bool,
    box_cpu_pct: f64,
    server_cpu_pct: f64,
    received: u64,
    sampled: u64,
    detected: u64,
    skipped: u64,
}

pub fn run(clip: &Path, counts: &[usize], seconds: f64, detect_fps: f64) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    println!(
        "clip {}; {cores} cores; {seconds} s per point; a fresh server process per point",
        clip.display()
    );
    println!("cams keyframes_only box_cpu_pct cpu_per_cam_pct server_cpu_pct fps_in sampled_per_s detected_per_s skipped");
    let me = std::process::id();
    let mut points = Vec::new();
    for keyframes_only in [false, true] {
        for &n in counts {
            let (server, url) = start_server(clip)?;
            let frames = Arc::new(LatestFrames::new());
            let cancel = CancellationToken::new();
            let detector = {
                let (frames, cancel) = (frames.clone(), cancel.clone());
                std::thread::spawn(move || {
                    while !cancel.is_cancelled() {
                        let _ = frames.take(Duration::from_millis(100));
                    }
                })
            };
            let cams = Cameras::new(IngestOptions::default(), frames, cancel.child_token());
            for i in 0..n {
                cams.add(CameraConfig {
                    name: format!("cam{i:02}"),
                    url: Secret::new(url.clone()),
                    detect_fps,
                    transport: Transport::Tcp,
                    keyframes_only,
                    credentials_file: None,
                    decoder: "auto".into(),
                    motion: None,
                    enabled: true,
                })?;
            }
            let deadline = Instant::now() + Duration::from_secs(60);
            while cams
                .snapshots()
                .iter()
                .any(|s| s.state != CameraState::Streaming)
            {
                if Instant::now() > deadline {
                    bail!(
                        "not every camera streaming after 60 s: {:?}",
                        cams.snapshots()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            std::thread::sleep(Duration::from_secs(3));
            let before = cams.snapshots();
            let (c0, s0, t0) = (
                cpu_seconds(me)?,
                cpu_seconds(server.0.id())?,
                Instant::now(),
            );
            std::thread::sleep(Duration::from_secs_f64(seconds));
            let (c1, s1, wall) = (cpu_seconds(me)?, cpu_seconds(server.0.id())?, t0.elapsed());
            let after = cams.snapshots();
            let sum = |v: &[watchpost::video::CameraSnapshot],
                       f: fn(&watchpost::video::CameraSnapshot) -> u64| {
                v.iter().map(f).sum::<u64>()
            };
            let delta =
                |f: fn(&watchpost::video::CameraSnapshot) -> u64| sum(&after, f) - sum(&before, f);
            let p = Point {
                cams: n,
                keyframes_only,
                box_cpu_pct: (c1 - c0) / wall.as_secs_f64() / cores * 100.0,
                server_cpu_pct: (s1 - s0) / wall.as_secs_f64() / cores * 100.0,
                received: delta(|s| s.frames_received),
                sampled: delta(|s| s.frames_sampled),
                detected: delta(|s| s.frames_detected),
                skipped: delta(|s| s.frames_skipped),
            };
            let per_s = |x: u64| x as f64 / wall.as_secs_f64() / n as f64;
            println!(
                "{:>4} {:>14} {:>11.1} {:>15.2} {:>14.1} {:>6.1} {:>13.2} {:>14.2} {:>7}",
                p.cams,
                p.keyframes_only,
                p.box_cpu_pct,
                p.box_cpu_pct / n as f64,
                p.server_cpu_pct,
                per_s(p.received),
                per_s(p.sampled),
                per_s(p.detected),
                p.skipped
            );
            points.push(p);
            cams.stop_all();
            cancel.cancel();
            let _ = detector.join();
            drop(server);
        }
    }
    let fit = |kf: bool| {
        let pts: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p.keyframes_only == kf)
            .map(|p| (p.cams as f64, p.box_cpu_pct))
            .collect();
        least_squares(&pts)
    };
    let (base, per_cam) = fit(false);
    let (_, kf_per_cam) = fit(true);
    let at_80 = ((80.0 - base) / per_cam).floor().max(0.0);
    println!("fit (all frames): box_cpu_pct = {base:.2} + {per_cam:.3} x cams");
    println!(
        "cams_at_80pct_cpu={at_80:.0} cpu_per_cam_pct={per_cam:.2} keyframes_only_cpu_per_cam_pct={kf_per_cam:.2}"
    );
    Ok(())
}

/// Intercept and slope of y over x.
fn least_squares(pts: &[(f64, f64)]) -> (f64, f64) {
    let n = pts.len() as f64;
    let (sx, sy) = pts.iter().fold((0.0, 0.0), |(a, b), (x, y)| (a + x, b + y));
    let (mx, my) = (sx / n, sy / n);
    let (num, den) = pts.iter().fold((0.0, 0.0), |(a, b), (x, y)| {
        (a + (x - mx) * (y - my), b + (x - mx) * (x - mx))
    });
    let slope = if den > 0.0 { num / den } else { 0.0 };
    (my - slope * mx, slope)
}
