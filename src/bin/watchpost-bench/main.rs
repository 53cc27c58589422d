//! `watchpost-bench`: the benchmark commands behind scripts/bench-*, kept out of the shipped
//! binary (`cargo build --release --features bench --bin watchpost-bench`). Results and the
//! commands that made them are in docs/benchmarks.md.

mod ingest;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use watchpost::config;
use watchpost::detect::{Detector, DetectorSpec};
use watchpost::outbox::Outbox;

/// The same allocator as the shipped binary, so that the detector is timed as it runs there.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "watchpost-bench",
    about = "watchpost's benchmarks (scripts/bench-*)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Outbox and delivery throughput (used by scripts/bench-outbox).
    Outbox {
        /// Backlog size for the drain measurements.
        #[arg(long, default_value_t = 100_000)]
        backlog: usize,
        /// A running MQTT broker to drain to (mqtt://host:port); skipped when absent.
        #[arg(long)]
        mqtt: Option<String>,
    },
    /// Ingest CPU per camera with a no-op detector (used by scripts/bench-ingest).
    Ingest {
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
    Detect {
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

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match dispatch(Cli::parse().cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(cmd: Cmd) -> Result<ExitCode> {
    match cmd {
        Cmd::Outbox { backlog, mqtt } => runtime()?.block_on(bench_outbox(backlog, mqtt)),
        Cmd::Ingest {
            clip,
            cams,
            seconds,
            detect_fps,
            serve,
        } => {
            if serve {
                ingest::serve(&clip)?;
            } else {
                ingest::run(&clip, &cams, seconds, detect_fps)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Detect {
            images,
            runs,
            threads,
            input_size,
            model,
            profile,
            stock_ops,
        } => {
            let spec = DetectorSpec::bundled(model, input_size, threads);
            let det = if stock_ops {
                Detector::load_stock(&spec)?
            } else {
                Detector::load(&spec)?
            };
            bench_detect(det, &images, runs, profile)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
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
