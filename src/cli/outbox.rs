//! `watchpost outbox …`: inspect and operate the outbox (safe while the daemon runs).

use anyhow::{bail, Result};
use clap::Subcommand;
use std::path::Path;
use std::process::ExitCode;
use watchpost::config::Config;
use watchpost::outbox::{Outbox, RowState};

#[derive(Subcommand)]
pub enum OutboxCmd {
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
    /// Recover the alerts of a damaged outbox file (one the daemon moved aside as
    /// outbox.db.corrupt-<time>) with SQLite's `.recover`, and queue again every alert some
    /// sink had not acknowledged. Safe while the daemon runs.
    Salvage {
        /// The damaged file.
        path: std::path::PathBuf,
        #[arg(long)]
        json: bool,
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

pub fn outbox(config: &Path, cmd: OutboxCmd) -> Result<ExitCode> {
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
        OutboxCmd::Salvage { path, json } => {
            // Alerts whose delivery rows were lost go to every enabled sink.
            let sinks: Vec<String> = config
                .sinks
                .iter()
                .filter(|s| s.enabled)
                .map(|s| s.name.clone())
                .collect();
            let report = ob.salvage(&path, &sinks)?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!(
                    "recovered from {} (sqlite3 {}): {} alerts",
                    path.display(),
                    report.method,
                    report.recovered_alerts
                );
                println!(
                    "queued again: {} alerts ({} deliveries)",
                    report.requeued_alerts, report.requeued_deliveries
                );
                println!("already in the outbox: {}", report.already_present);
                println!("delivered before the damage: {}", report.delivered_before);
                if !report.damaged.is_empty() {
                    println!(
                        "not sent, body no longer matches its seal: {} ({})",
                        report.damaged.len(),
                        report.damaged.join(", ")
                    );
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
