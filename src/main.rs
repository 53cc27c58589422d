//! The command line: parse, build the rooms, run. See `lib.rs` for the layout.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

/// Only the binary's benchmark of ingest; the rooms are in the library (`lib.rs`).
mod bench_ingest;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use watchpost::config::{self, Config, ConfigError, DEFAULT_CONFIG_PATH};
use watchpost::detect::{Detector, DetectorSpec};
use watchpost::outbox::{Outbox, RowState};

/// mimalloc keeps freed pages for reuse: tract allocates every node's output afresh each
/// frame, and with glibc the large ones are mmap'ed and page-faulted in again every frame.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "watchpost",
    version,
    about = "Edge firmware for on-site camera gateways"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
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
        cmd: OutboxCmd,
    },
    /// Outbox and delivery throughput (used by scripts/bench-outbox).
    #[command(hide = true)]
    BenchOutbox {
        /// Backlog size for the drain measurements.
        #[arg(long, default_value_t = 100_000)]
        backlog: usize,
        /// A running MQTT broker to drain to (mqtt://host:port); skipped when absent.
        #[arg(long)]
        mqtt: Option<String>,
    },
    /// Ingest CPU per camera with a no-op detector (used by scripts/bench-ingest).
    #[command(hide = true)]
    BenchIngest {
        /// An H.264 MP4 the cameras read (served over RTSP by a child process).
        clip: PathBuf,
        /// Camera counts to measure, with and without keyframes_only.
        #[arg(long, value_delimiter = ',', default_value = "1,4,8,16")]
        cams: Vec<usize>,
        #[arg(long, default_value_t = 15.0)]
        seconds: f64,
        #[arg(long, default_value_t = 2.0)]
        detect_fps: f64,
        /// Internal: be the RTSP server process.
        #[arg(long)]
        serve: bool,
    },
    /// Time the detector on images (used by scripts/bench).
    #[command(hide = true)]
    BenchDetect {
        images: Vec<PathBuf>,
        #[arg(long, default_value_t = 30)]
        runs: usize,
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// Default: the model family's own size.
        #[arg(long)]
        input_size: Option<usize>,
        #[arg(long)]
        model: Option<PathBuf>,
        /// Also print, on stderr, milliseconds per operator kind and the slowest nodes.
        #[arg(long)]
        profile: bool,
        /// tract's own operators only, without watchpost's plane-wise pad/resize/max-pool.
        #[arg(long)]
        stock_ops: bool,
    },
}

#[derive(Subcommand)]
enum OutboxCmd {
    /// Counts of alerts and of delivery rows by state.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Delivery rows, oldest first.
    List {
        #[arg(long)]
        json: bool,
        #[arg(long, value_parser = parse_state)]
        state: Option<RowState>,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Dead-lettered rows.
    DeadLetters {
        #[arg(long)]
        json: bool,
    },
    /// Put dead letters back in the queue: one by row id, or all with --all-dead.
    Replay {
        id: Option<i64>,
        #[arg(long)]
        all_dead: bool,
    },
}

fn parse_state(s: &str) -> Result<RowState, String> {
    match s {
        "pending" => Ok(RowState::Pending),
        "delivered" => Ok(RowState::Delivered),
        "dead" => Ok(RowState::Dead),
        _ => Err(format!("unknown state \"{s}\" (pending, delivered, dead)")),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into the journal or a file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match dispatch(cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cmd: Cmd) -> Result<ExitCode> {
    match cmd {
        Cmd::CheckConfig { path } => Ok(check_config(&path)),
        Cmd::Run { config: path } => {
            let config = Config::load(&path)?;
            runtime()?.block_on(async {
                let cancel = CancellationToken::new();
                stop_on_signal(cancel.clone());
                let opts = watchpost::app::RunOptions {
                    config_path: Some(path.clone()),
                    ..Default::default()
                };
                reload_model_on_sighup(path, config.model.clone(), opts.model_switch.clone());
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
        } => {
            let spec = match config {
                Some(p) => DetectorSpec::from_config(&Config::load(&p)?.model),
                None => bundled_spec(model, None, 2),
            };
            let mut det = Detector::load(&spec)?;
            let (dets, w, h) = det.detect_file(&image)?;
            if let Some(runs) = timing {
                print_timing(&mut det, &image, runs.max(1))?;
            }
            #[derive(serde::Serialize)]
            struct Out<'a> {
                label: &'a str,
                confidence: f64,
                #[serde(rename = "box")]
                bbox: [f64; 4],
            }
            let round = |v: f64, k: f64| (v * k).round() / k;
            let (w, h) = (w as f64, h as f64);
            let out: Vec<Out> = dets
                .iter()
                .map(|d| {
                    let b = d.bbox.map(f64::from);
                    Out {
                        label: &d.label,
                        confidence: round(d.confidence as f64, 1000.0),
                        bbox: [b[0] * w, b[1] * h, b[2] * w, b[3] * h].map(|v| round(v, 10.0)),
                    }
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&out)?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Demo {
            duration,
            data_dir,
            clip,
            min_hits,
        } => demo(duration, data_dir, clip, min_hits),
        Cmd::Outbox { config, cmd } => outbox(&config, cmd),
        Cmd::BenchOutbox { backlog, mqtt } => runtime()?.block_on(bench_outbox(backlog, mqtt)),
        Cmd::BenchIngest {
            clip,
            cams,
            seconds,
            detect_fps,
            serve,
        } => {
            if serve {
                bench_ingest::serve(&clip)?;
            } else {
                bench_ingest::run(&clip, &cams, seconds, detect_fps)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::BenchDetect {
            images,
            runs,
            threads,
            input_size,
            model,
            profile,
            stock_ops,
        } => {
            let spec = bundled_spec(model, input_size, threads);
            let det = if stock_ops {
                Detector::load_stock(&spec)?
            } else {
                Detector::load(&spec)?
            };
            bench_detect(det, &images, runs, profile)
        }
    }
}

/// Median milliseconds per stage over `runs` detections of `image` (after the first, which
/// warms caches and the allocator), as a table on stderr.
fn print_timing(det: &mut Detector, image: &Path, runs: usize) -> Result<()> {
    let mut all = Vec::with_capacity(runs);
    for _ in 0..runs {
        det.detect_file(image)?;
        all.push(det.last_timing());
    }
    let median = |f: fn(&watchpost::detect::StageTimes) -> f64| {
        let mut v: Vec<f64> = all.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (load, pre, model, post) = (
        median(|t| t.load_ms),
        median(|t| t.pre_ms),
        median(|t| t.model_ms),
        median(|t| t.post_ms),
    );
    eprintln!(
        "timing (median of {runs} runs, {} px, {} threads):",
        det.input_size(),
        det.threads()
    );
    for (stage, ms) in [
        ("load (decode + resize)", load),
        ("pre (normalise)", pre),
        ("model (tract)", model),
        ("post (decode + NMS)", post),
        ("total", load + pre + model + post),
    ] {
        eprintln!("  {stage:<24} {ms:>8.2} ms");
    }
    Ok(())
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// SIGINT/SIGTERM → orderly shutdown; a second signal exits at once.
fn stop_on_signal(cancel: CancellationToken) {
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

/// SIGHUP → re-read the config; a changed `[model]` is switched live (cameras keep running).
/// Other changes need a restart for now, and the log says so.
fn reload_model_on_sighup(
    path: PathBuf,
    mut current: config::ModelConfig,
    switch: watchpost::app::ModelSwitch,
) {
    tokio::spawn(async move {
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGHUP");
                return;
            }
        };
        while hup.recv().await.is_some() {
            match Config::load(&path) {
                Err(e) => {
                    tracing::error!(config = %path.display(), "reload refused, keeping the running config:\n{e}")
                }
                Ok(c) if c.model == current => {
                    tracing::warn!("config reloaded: [model] unchanged; other changes apply at the next restart")
                }
                Ok(c) => {
                    tracing::info!(model = %c.model.path.display(), "config reloaded: switching model");
                    switch.request(DetectorSpec::from_config(&c.model));
                    current = c.model;
                }
            }
        }
    });
}

fn check_config(path: &Path) -> ExitCode {
    match Config::load(path) {
        Ok(c) => {
            println!(
                "{}: ok ({} cameras, {} rules, {} sinks)",
                path.display(),
                c.cameras.len(),
                c.rules.len(),
                c.sinks.len()
            );
            ExitCode::SUCCESS
        }
        Err(ConfigError::Invalid(problems)) => {
            for p in &problems {
                println!("{p}");
            }
            println!("{}: {} problem(s)", path.display(), problems.len());
            ExitCode::FAILURE
        }
        Err(e) => {
            println!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn demo(
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

fn outbox(config: &Path, cmd: OutboxCmd) -> Result<ExitCode> {
    let config = Config::load(config)?;
    let mut ob = Outbox::open(&config.outbox_path())?;
    let print_rows = |rows: Vec<watchpost::outbox::ListedRow>, json: bool| -> Result<()> {
        for r in rows {
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "{:>6}  {}  {:<16} {:<9} attempts={:<3} {}  {}/{}{}",
                    r.id,
                    r.alert_id,
                    r.sink,
                    serde_json::to_value(r.state)?.as_str().unwrap_or("?"),
                    r.attempts,
                    r.created_at,
                    r.camera,
                    r.rule,
                    r.last_error.map(|e| format!("  ({e})")).unwrap_or_default()
                );
            }
        }
        Ok(())
    };
    match cmd {
        OutboxCmd::Stats { json } => {
            let s = ob.stats()?;
            let sinks = ob.sink_stats(chrono::Utc::now().timestamp_millis())?;
            if json {
                let mut v = serde_json::to_value(&s)?;
                v["sinks"] = serde_json::to_value(&sinks)?;
                println!("{v}");
            } else {
                println!("outbox:    {}", ob.path().display());
                println!("alerts:    {}", s.alerts);
                println!("pending:   {}", s.pending);
                println!("delivered: {}", s.delivered);
                println!("dead:      {}", s.dead);
                println!(
                    "oldest pending: {}",
                    s.oldest_pending.as_deref().unwrap_or("-")
                );
                println!("file size: {} bytes", s.file_bytes);
                for k in sinks {
                    let opt = |v: Option<f64>, unit: &str| {
                        v.map(|v| format!("{v:.1}{unit}"))
                            .unwrap_or_else(|| "-".into())
                    };
                    println!(
                        "sink {}: {} pending, {} delivered, {} dead; last 24 h: {} events, success {}, latency avg {} p95 {}",
                        k.sink,
                        k.pending,
                        k.delivered,
                        k.dead,
                        k.events_24h,
                        opt(k.delivery_success_rate.map(|r| r * 100.0), " %"),
                        opt(k.latency_avg_ms, " ms"),
                        opt(k.latency_p95_ms.map(|v| v as f64), " ms"),
                    );
                }
            }
        }
        OutboxCmd::List { json, state, limit } => print_rows(ob.list(state, limit)?, json)?,
        OutboxCmd::DeadLetters { json } => {
            let rows = ob.list(Some(RowState::Dead), usize::MAX >> 1)?;
            if json {
                // Each dead letter with its whole attempt history.
                for r in rows {
                    let mut v = serde_json::to_value(&r)?;
                    v["attempt_history"] = serde_json::to_value(ob.attempts(r.id)?)?;
                    println!("{v}");
                }
            } else {
                for r in &rows {
                    let history = ob.attempts(r.id)?;
                    print_rows(vec![r.clone()], false)?;
                    for a in history {
                        println!(
                            "          {}  status={}  {} ms  {}",
                            a.at,
                            a.status
                                .map(|s| s.to_string())
                                .unwrap_or_else(|| "-".into()),
                            a.latency_ms,
                            a.error.unwrap_or_default()
                        );
                    }
                }
            }
        }
        OutboxCmd::Replay { id, all_dead } => {
            let now = chrono::Utc::now().timestamp_millis();
            match (id, all_dead) {
                (Some(id), false) => {
                    ob.replay(id, now)?;
                    println!("row {id} queued again");
                }
                (None, true) => println!("{} dead letters queued again", ob.replay_all_dead(now)?),
                _ => bail!("give a row id or --all-dead (not both)"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The default model config with paths resolved from here, optionally another model file.
fn bundled_spec(model: Option<PathBuf>, input_size: Option<usize>, threads: usize) -> DetectorSpec {
    let mut m = config::ModelConfig::default();
    m.path = model.unwrap_or_else(|| config::resolve(Path::new("."), &m.path));
    m.labels = config::resolve(Path::new("."), &m.labels);
    let mut spec = DetectorSpec::from_config(&m);
    spec.input_size = input_size;
    spec.threads = threads;
    spec
}

fn bench_detect(
    mut det: Detector,
    images: &[PathBuf],
    runs: usize,
    profile: bool,
) -> Result<ExitCode> {
    let threads = det.threads();
    let input_size = det.input_size();
    let mut times = Vec::new();
    let mut by_op: std::collections::BTreeMap<String, (f64, usize)> = Default::default();
    let mut by_node: std::collections::BTreeMap<String, (f64, String)> = Default::default();
    for img in images {
        let rgb = image::open(img)
            .with_context(|| format!("{}", img.display()))?
            .to_rgb8();
        let (w, h) = rgb.dimensions();
        let frame = watchpost::detect::resize_rgb(rgb.as_raw(), w, h, input_size as u32)
            .map_err(anyhow::Error::msg)?;
        det.detect_rgb(&frame)?; // warm-up, not counted
        for _ in 0..runs {
            let t = Instant::now();
            det.detect_rgb(&frame)?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        if profile {
            for _ in 0..runs {
                for (op, node, ms) in det.profile(&frame)? {
                    let e = by_op.entry(op.clone()).or_default();
                    e.0 += ms;
                    e.1 += 1;
                    by_node.entry(node).or_insert((0.0, op)).0 += ms;
                }
            }
        }
    }
    times.sort_by(f64::total_cmp);
    let med = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    let p95 = times
        .get((times.len() * 95 / 100).min(times.len().saturating_sub(1)))
        .copied()
        .unwrap_or(f64::NAN);
    let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
    if profile {
        let frames = (images.len() * runs).max(1) as f64;
        let total: f64 = by_op.values().map(|v| v.0).sum();
        let mut rows: Vec<_> = by_op.into_iter().collect();
        rows.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
        eprintln!("profile: ms per frame by operator ({threads} threads)");
        for (op, (ms, n)) in rows {
            eprintln!(
                "  {op:<28} {:>8.2} ms  {:>5.1} %  {:>4} nodes",
                ms / frames,
                ms / total * 100.0,
                n / frames as usize
            );
        }
        let mut nodes: Vec<_> = by_node.into_iter().collect();
        nodes.sort_by(|a, b| b.1 .0.total_cmp(&a.1 .0));
        eprintln!("slowest nodes:");
        for (node, (ms, op)) in nodes.into_iter().take(12) {
            eprintln!("  {:>8.2} ms  {op:<20} {node}", ms / frames);
        }
    }
    println!(
        "{}",
        serde_json::json!({"runtime": "watchpost/tract", "threads": threads, "input_size": input_size,
            "fast_ops": det.fast_ops(),
            "frames": times.len(), "median_ms": med, "p95_ms": p95, "mean_ms": mean,
            "min_ms": times.first(), "max_ms": times.last()})
    );
    Ok(ExitCode::SUCCESS)
}

fn bench_alert(n: usize) -> watchpost::outbox::NewAlert {
    let id = ulid::Ulid::new().to_string();
    watchpost::outbox::NewAlert {
        body: format!(
            r#"{{"type":"alert.fired","timestamp":"2026-11-24T10:30:45.123Z","data":{{"alert_id":"{id}","device_id":"bench","site":"bench","camera":"cam","rule":"r","label":"person","confidence":0.91,"count":1,"severity":"high","n":{n}}}}}"#
        )
        .into_bytes(),
        alert_id: id,
        created_at: chrono::Utc::now(),
        camera: "cam".into(),
        rule: "r".into(),
        severity: "high".into(),
        sinks: vec![watchpost::outbox::NewDelivery::to("bench")],
    }
}

/// Drains a fresh outbox of `backlog` alerts through one sink; returns alerts per second.
async fn bench_drain(sink_toml: &str, backlog: usize) -> Result<f64> {
    use watchpost::deliver::{RetryPolicy, Sink, SinkWorker};
    use watchpost::outbox::SharedOutbox;
    let dir = tempfile::tempdir()?;
    let outbox = SharedOutbox::new(Outbox::open(&dir.path().join("outbox.db"))?);
    for chunk in (0..backlog).collect::<Vec<_>>().chunks(5000) {
        let alerts: Vec<_> = chunk.iter().map(|n| bench_alert(*n)).collect();
        outbox.with(|o| o.commit(&alerts))?;
    }
    let cfg: config::SinkConfig = toml::from_str(sink_toml)?;
    let worker = SinkWorker {
        metrics: Default::default(),
        sink: std::sync::Arc::new(Sink::from_config(&cfg, "bench")?),
        outbox: outbox.clone(),
        policy: RetryPolicy::from_config(&config::DeliveryConfig::default()),
        clock: std::sync::Arc::new(watchpost::clock::SystemClock),
        wake: std::sync::Arc::new(tokio::sync::Notify::new()),
        concurrency: cfg.concurrency(),
    };
    let cancel = CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn(worker.run(cancel.clone()));
    let deadline = started + Duration::from_secs(600);
    loop {
        let stats = outbox.call(|o| o.stats()).await?;
        if stats.delivered as usize >= backlog || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    cancel.cancel();
    let _ = task.await;
    let delivered = outbox.call(|o| o.stats()).await?.delivered as f64;
    Ok(delivered / secs)
}

async fn bench_outbox(backlog: usize, mqtt: Option<String>) -> Result<ExitCode> {
    let dir = tempfile::tempdir()?;
    let mut ob = Outbox::open(&dir.path().join("outbox.db"))?;
    // 1. Single-alert commits, each its own fsync'd transaction.
    let mut lat: Vec<f64> = (0..500)
        .map(|n| {
            let a = [bench_alert(n)];
            let t = Instant::now();
            ob.commit(&a).map(|_| t.elapsed().as_secs_f64() * 1000.0)
        })
        .collect::<Result<_, _>>()?;
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() - 1) as f64 * p).round() as usize];
    // 2. Batched commits, as the committer does under a burst.
    let t = Instant::now();
    for b in 0..20 {
        let batch: Vec<_> = (0..500).map(|n| bench_alert(b * 500 + n)).collect();
        ob.commit(&batch)?;
    }
    let batched = 10_000.0 / t.elapsed().as_secs_f64();
    println!(
        "commit single: p50 {:.2} ms, p99 {:.2} ms; batched (500/commit): {batched:.0} alerts/s",
        pct(0.5),
        pct(0.99)
    );

    // 3. Drain a backlog to a loopback webhook receiver.
    let secret = "whsec_YmVuY2gtc2VjcmV0LWJlbmNoLXNlY3JldA==";
    let receiver = watchpost::demo::Receiver::start(0, None, None).await?;
    let webhook = bench_drain(
        &format!(
            "name = \"bench\"\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"{secret}\"",
            receiver.url()
        ),
        backlog,
    )
    .await?;
    println!("drain webhook: {backlog} alerts at {webhook:.0} alerts/s (4 in flight, signed per attempt)");
    drop(receiver);
    // 4. And to an MQTT broker, when one is given.
    let mqtt_rate = match mqtt {
        Some(url) => {
            let r = bench_drain(
                &format!(
                    "name = \"bench\"\nkind = \"mqtt\"\nurl = \"{url}\"\nsecret = \"{secret}\"\nqos = 1\n{}",
                    std::env::var("WATCHPOST_BENCH_MQTT").unwrap_or_default()
                ),
                backlog,
            )
            .await?;
            println!("drain mqtt: {backlog} alerts at {r:.0} alerts/s (QoS 1, PUBACK per alert)");
            format!("{r:.0}")
        }
        None => "-".into(),
    };
    println!(
        "commit_p99_ms={:.2} drain_webhook_per_s={webhook:.0} drain_mqtt_per_s={mqtt_rate}",
        pct(0.99)
    );
    Ok(ExitCode::SUCCESS)
}
