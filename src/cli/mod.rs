//! The command line: one file per command, each turning arguments into calls on the rooms of
//! the library (`lib.rs` has the layout). The benchmark commands are not here: they are the
//! separate `watchpost-bench` binary (`--features bench`).

mod check;
mod demo;
mod detect;
mod outbox;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;
use watchpost::config::{Config, DEFAULT_CONFIG_PATH};

#[derive(Parser)]
#[command(
    name = "watchpost",
    version,
    about = "Edge firmware for on-site camera gateways"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Run the daemon.
    Run {
        #[arg(long, default_value = DEFAULT_CONFIG_PATH)]
        config: PathBuf,
    },
    /// Validate a config file; print every problem with its location; exit 1 on error.
    CheckConfig { path: PathBuf },
    /// Run the detector on one image and print the detections as JSON (boxes in image pixels).
    Detect {
        image: PathBuf,
        #[arg(long)]
        config: Option<PathBuf>,
        /// An ONNX model to use instead of the config's (e.g. models/ssdlite-mnv2-300.onnx).
        #[arg(long, conflicts_with = "config")]
        model: Option<PathBuf>,
        /// Also print, on stderr, the milliseconds of each stage (load, pre, model, post):
        /// the median of this many runs after a warm-up run.
        #[arg(long, num_args = 0..=1, default_missing_value = "10")]
        timing: Option<usize>,
    },
    /// The embedded default: bundled clip → local RTSP → detector → rules → outbox → signed
    /// webhook to a local verifying receiver.
    Demo {
        /// Stop after this many seconds (default: run until Ctrl-C).
        #[arg(long)]
        duration: Option<f64>,
        /// Where the demo keeps its outbox and config (default: a new folder under /tmp).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// An H.264 MP4 to serve instead of the bundled clip.
        #[arg(long)]
        clip: Option<PathBuf>,
        /// Frames a track needs before rules see it (default 2). 1 suits a detector that
        /// sees a frame every few seconds, e.g. under CPU emulation (scripts/test-aarch64).
        #[arg(long, hide = true)]
        min_hits: Option<u32>,
    },
    /// Inspect and operate the outbox (safe while the daemon runs).
    Outbox {
        #[arg(long, default_value = DEFAULT_CONFIG_PATH, global = true)]
        config: PathBuf,
        #[command(subcommand)]
        cmd: outbox::OutboxCmd,
    },
}

pub fn dispatch(cmd: Cmd) -> Result<ExitCode> {
    match cmd {
        Cmd::CheckConfig { path } => Ok(check::check_config(&path)),
        Cmd::Run { config: path } => {
            let config = Config::load(&path)?;
            runtime()?.block_on(async {
                let cancel = CancellationToken::new();
                stop_on_signal(cancel.clone());
                let opts = watchpost::app::RunOptions {
                    config_path: Some(path.clone()),
                    ..Default::default()
                };
                let summary = watchpost::app::run(config, opts, cancel).await?;
                tracing::info!(
                    frames = summary.frames_detected,
                    alerts = summary.alerts_committed,
                    "stopped"
                );
                Ok(ExitCode::SUCCESS)
            })
        }
        Cmd::Detect {
            image,
            config,
            model,
            timing,
        } => detect::detect(&image, config.as_deref(), model, timing),
        Cmd::Demo {
            duration,
            data_dir,
            clip,
            min_hits,
        } => demo::demo(duration, data_dir, clip, min_hits),
        Cmd::Outbox { config, cmd } => outbox::outbox(&config, cmd),
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// SIGINT/SIGTERM → orderly shutdown; a second signal exits at once.
pub(crate) fn stop_on_signal(cancel: CancellationToken) {
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(error = %e, "cannot listen for SIGTERM");
                    return;
                }
            };
        for n in 0..2 {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            if n == 0 {
                tracing::info!("signal received; shutting down (again to exit at once)");
                cancel.cancel();
            } else {
                std::process::exit(130);
            }
        }
    });
}
