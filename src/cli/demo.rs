//! `watchpost demo`: the bundled clip through the whole pipeline to a verifying receiver.

use super::{runtime, stop_on_signal};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use watchpost::config;

pub fn demo(
    duration: Option<f64>,
    data_dir: Option<PathBuf>,
    clip: Option<PathBuf>,
    min_hits: Option<u32>,
) -> Result<ExitCode> {
    let data_dir = match data_dir {
        Some(d) => d,
        None => tempfile::Builder::new()
            .prefix("watchpost-demo-")
            .tempdir()
            .context("cannot create the demo folder")?
            .keep(),
    };
    let clip =
        clip.unwrap_or_else(|| config::resolve(Path::new("."), Path::new(watchpost::demo::CLIP)));
    let duration = match duration {
        Some(d) if !(d > 0.0 && d.is_finite()) => {
            bail!("--duration must be a positive number of seconds")
        }
        d => d.map(Duration::from_secs_f64),
    };
    runtime()?.block_on(async {
        let cancel = CancellationToken::new();
        stop_on_signal(cancel.clone());
        let s = watchpost::demo::run(
            watchpost::demo::DemoOptions {
                duration,
                data_dir,
                clip,
                min_hits,
            },
            cancel,
        )
        .await?;
        let ms = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into());
        println!();
        println!(
            "summary: {} alerts and {} alert.ended events delivered ({} signatures verified, {} failed); end-to-end latency p50 {} ms, p95 {} ms",
            s.alerts_received, s.ended_received, s.verified, s.failed_verification, ms(s.e2e_p50_ms), ms(s.e2e_p95_ms)
        );
        println!(
            "         {} frames detected, mean {:.1} ms/frame, {} frames skipped by the newest-frame hand-off; {} alerts committed",
            s.run.frames_detected, s.run.mean_detect_ms, s.run.frames_skipped, s.run.alerts_committed
        );
        println!("         config and outbox: {}", s.config.display());
        println!(
            "demo_result alerts={} verified={} failed={} e2e_p50_ms={} e2e_p95_ms={} detect_ms={:.1}",
            s.alerts_received, s.verified, s.failed_verification, ms(s.e2e_p50_ms), ms(s.e2e_p95_ms), s.run.mean_detect_ms
        );
        Ok(if s.failed_verification == 0 && s.alerts_received > 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}
