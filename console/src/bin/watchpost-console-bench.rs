//! The console's load generator (`scripts/bench-console`): N simulated gateways publishing
//! health and alerts into a real broker, with the real console ingesting them; reports what
//! the console sustained. Many device ids share each MQTT connection (a broker holds tens of
//! thousands of sessions, but one test machine does not need to open them).
//!
//! Time is compressed: a gateway's health every `--health-every` seconds stands for one every
//! 30 s (the gateway's default), so `--health-every 0.3` is 100× real time, and alerts come at
//! `--alerts-per-gateway-hour` (real time) × the same factor.

use clap::Parser;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, MqttOptions};
use std::time::{Duration, Instant};
use watchpost_contracts::event::{Event, Fired, FIRED};
use watchpost_contracts::health::{ConditionReport, Health};
use watchpost_contracts::topics;

#[derive(Parser)]
struct Args {
    #[arg(long)]
    gateways: usize,
    /// The broker's TCP port on 127.0.0.1.
    #[arg(long)]
    mqtt_port: u16,
    /// The console's base URL (https://127.0.0.1:PORT).
    #[arg(long)]
    console: String,
    /// An API token of the console (a viewer's will do).
    #[arg(long)]
    token: String,
    #[arg(long, default_value_t = 30.0)]
    seconds: f64,
    #[arg(long, default_value_t = 0.3)]
    health_every: f64,
    #[arg(long, default_value_t = 20.0)]
    alerts_per_gateway_hour: f64,
    /// MQTT connections the simulated gateways share.
    #[arg(long, default_value_t = 8)]
    connections: usize,
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn health(device: &str, site: &str, interval: f64) -> Vec<u8> {
    serde_json::to_vec(&Health {
        device: device.into(),
        site: site.into(),
        version: "bench".into(),
        at: now_rfc3339(),
        health_interval_s: interval,
        uptime_s: 3600,
        model: "nanodet-416.onnx".into(),
        cameras: Vec::new(),
        cameras_streaming: 0,
        frames_detected: 1000,
        inference_ms_mean: Some(62.0),
        alerts_committed: 10,
        outbox_pending: 0,
        dead_letters: 0,
        events_24h: 20,
        delivery_success_rate: Some(1.0),
        delivery_latency_p50_ms: Some(40),
        delivery_latency_p95_ms: Some(90),
        anomalies: Vec::new(),
        alerts_uncommitted: 0,
        alerts_dropped_uncommitted: 0,
        outbox: ConditionReport::default(),
        sinks: Vec::new(),
        delivery: Vec::new(),
        lines: Vec::new(),
    })
    .unwrap_or_default()
}

fn alert(device: &str, site: &str) -> Vec<u8> {
    serde_json::to_vec(&Event {
        kind: FIRED.into(),
        timestamp: now_rfc3339(),
        data: Fired {
            alert_id: ulid::Ulid::new().to_string(),
            device_id: device.into(),
            site: site.into(),
            camera: "dock".into(),
            rule: "person-seen".into(),
            label: "person".into(),
            confidence: 0.8,
            count: 1,
            severity: "medium".into(),
            frame_ts: now_rfc3339(),
            objects: Vec::new(),
            metadata: Default::default(),
            snapshot: None,
            snapshot_jpeg: None,
            line: None,
        },
    })
    .unwrap_or_default()
}

/// The value of a counter or gauge sample in Prometheus text.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(series))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The p-quantile of a Prometheus histogram's bucket counts (`le`, cumulative), linearly
/// within the bucket, from two scrapes (only what happened between them).
fn quantile(before: &str, after: &str, name: &str, q: f64) -> Option<f64> {
    let buckets = |text: &str| -> Vec<(f64, f64)> {
        text.lines()
            .filter(|l| l.starts_with(&format!("{name}_bucket")))
            .filter_map(|l| {
                let le = l.split("le=\"").nth(1)?.split('"').next()?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, l.rsplit(' ').next()?.parse().ok()?))
            })
            .collect()
    };
    let (b, a) = (buckets(before), buckets(after));
    let counts: Vec<(f64, f64)> = a
        .iter()
        .map(|(le, n)| {
            (
                *le,
                n - b.iter().find(|(l, _)| l == le).map_or(0.0, |x| x.1),
            )
        })
        .collect();
    let total = counts.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let want = q * total;
    let mut prev = (0.0, 0.0);
    for (le, n) in counts {
        if n >= want {
            if le.is_infinite() {
                return Some(prev.0);
            }
            let frac = if n > prev.1 {
                (want - prev.1) / (n - prev.1)
            } else {
                1.0
            };
            return Some(prev.0 + frac * (le - prev.0));
        }
        prev = (le, n);
    }
    None
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let http = reqwest::Client::builder()
        // The console's self-signed certificate, on loopback.
        .danger_accept_invalid_certs(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client");
    let metrics = || async {
        http.get(format!("{}/metrics", args.console))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()
    };
    let compression = 30.0 / args.health_every;
    let alert_every_s =
        3600.0 / (args.alerts_per_gateway_hour * compression).max(1e-9) / args.gateways as f64;
    let mut clients = Vec::new();
    for c in 0..args.connections.max(1) {
        let mut opts = MqttOptions::new(format!("bench-{c}"), "127.0.0.1", args.mqtt_port);
        opts.set_keep_alive(Duration::from_secs(30));
        let (client, mut eventloop) = AsyncClient::new(opts, 100_000);
        tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
        clients.push(client);
    }
    let before = metrics().await.unwrap_or_default();
    let started = Instant::now();
    let run = Duration::from_secs_f64(args.seconds);
    let (offered_health, offered_alerts) = (
        std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
        std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0)),
    );
    let mut tasks = Vec::new();
    for (c, client) in clients.iter().cloned().enumerate() {
        let (n, k) = (args.gateways, clients.len());
        let devices: Vec<(String, String)> = (c..n)
            .step_by(k)
            .map(|i| (format!("gw-{i:05}"), format!("site-{:03}", i % 100)))
            .collect();
        let (every, interval, oh) = (args.health_every, args.health_every, offered_health.clone());
        tasks.push(tokio::spawn(async move {
            // Each connection's gateways spread over the interval, as real ones would be.
            let mut tick =
                tokio::time::interval(Duration::from_secs_f64(every / devices.len().max(1) as f64));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut i = 0usize;
            while started.elapsed() < run {
                tick.tick().await;
                let (d, s) = &devices[i % devices.len()];
                if client
                    .publish(
                        topics::health(d),
                        QoS::AtLeastOnce,
                        true,
                        health(d, s, interval),
                    )
                    .await
                    .is_ok()
                {
                    oh.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                i += 1;
            }
        }));
    }
    {
        let (client, n, oa) = (clients[0].clone(), args.gateways, offered_alerts.clone());
        tasks.push(tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(Duration::from_secs_f64(alert_every_s.max(0.0005)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut i = 0usize;
            while started.elapsed() < run {
                tick.tick().await;
                let g = (i * 7919) % n;
                let (d, s) = (format!("gw-{g:05}"), format!("site-{:03}", g % 100));
                if client
                    .publish(
                        topics::alerts(&d, "dock"),
                        QoS::AtLeastOnce,
                        false,
                        alert(&d, &s),
                    )
                    .await
                    .is_ok()
                {
                    oa.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                i += 1;
            }
        }));
    }
    // The fleet page's own call, once a second, timed.
    let mut api_ms = Vec::new();
    while started.elapsed() < run {
        let t = Instant::now();
        let ok = http
            .get(format!("{}/api/gateways", args.console))
            .bearer_auth(&args.token)
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        if ok {
            api_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for t in tasks {
        let _ = t.await;
    }
    // Let the console catch up (bounded), then read what it did.
    let offered = offered_health.load(std::sync::atomic::Ordering::Relaxed)
        + offered_alerts.load(std::sync::atomic::Ordering::Relaxed);
    let ingested = |m: &str| {
        sample(m, "watchpost_console_ingest_messages_total")
            - sample(&before, "watchpost_console_ingest_messages_total")
    };
    let catch_up = Instant::now();
    let mut after = metrics().await.unwrap_or_default();
    while ingested(&after) < offered as f64 && catch_up.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        after = metrics().await.unwrap_or_default();
    }
    let drained_s = catch_up.elapsed().as_secs_f64();
    let elapsed = args.seconds + drained_s;
    api_ms.sort_by(f64::total_cmp);
    let p95 = |v: &[f64]| {
        v.get(((v.len() as f64 * 0.95).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let lag = quantile(
        &before,
        &after,
        "watchpost_console_ingest_lag_seconds",
        0.95,
    )
    .unwrap_or(f64::NAN);
    let per_s = ingested(&after) / elapsed;
    println!(
        "gateways={} offered={} ingested={} seconds={:.1} drain_after_s={:.1} offered_per_s={:.0} compression={:.0}x",
        args.gateways,
        offered,
        ingested(&after),
        args.seconds,
        drained_s,
        offered as f64 / args.seconds,
        compression
    );
    println!(
        "console_ingest_per_s={per_s:.0} ingest_lag_p95_ms={:.0} fleet_api_p95_ms={:.1} gateways={}",
        lag * 1000.0,
        p95(&api_ms),
        args.gateways
    );
}
