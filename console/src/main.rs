//! The `watchpost-console` command line (a contract: `run --config PATH`, `check-config PATH`).

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use watchpost_console::config::{Config, ConfigError};

#[derive(Parser)]
#[command(
    name = "watchpost-console",
    version,
    about = "The watchpost fleet console"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the console until SIGINT or SIGTERM.
    Run {
        #[command(flatten)]
        at: Where,
        /// Overrides `[web] listen`.
        #[arg(long)]
        listen: Option<String>,
        /// Overrides `[console] replica`.
        #[arg(long)]
        replica: Option<String>,
    },
    /// Checks a config file; prints every problem with its line, exits 1 if there is one.
    CheckConfig { path: PathBuf },
    /// Adds a gateway without the page: makes its control key in the console's database and
    /// prints the `[control.mqtt]` lines for the gateway (the key is shown this once).
    Enrol {
        /// The gateway's `device.id`.
        device: String,
        #[command(flatten)]
        at: Where,
    },
}

/// Which console: its config file (or the defaults: SQLite in --data-dir, the broker on
/// 127.0.0.1:1883, the page on 0.0.0.0:9443) and what the command line overrides.
#[derive(clap::Args)]
struct Where {
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides `[console] data_dir`.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Overrides `[database] url` (postgres://…).
    #[arg(long)]
    database: Option<String>,
    /// Overrides `[broker] url` (for `enrol`: the broker URL printed for the gateway).
    #[arg(long)]
    broker: Option<String>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into the journal or a file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::CheckConfig { path } => match Config::load(&path) {
            Ok(_) => {
                println!("{}: ok", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::FAILURE
            }
        },
        Command::Enrol { device, at } => {
            let mut cfg = match load(at, None, None) {
                Ok(c) => c,
                Err(code) => return code,
            };
            cfg.console.replica = "cli".into();
            enrol(&cfg, &device)
        }
        Command::Run {
            at,
            listen,
            replica,
        } => match load(at, listen, replica) {
            Ok(cfg) => run(cfg),
            Err(code) => code,
        },
    }
}

/// The config file (or the defaults) with the command line's overrides, checked like the file.
fn load(at: Where, listen: Option<String>, replica: Option<String>) -> Result<Config, ExitCode> {
    let Where {
        config,
        data_dir,
        database,
        broker,
    } = at;
    let loaded = match config.as_deref() {
        Some(p) => Config::load(p),
        None => Config::parse("", "(defaults)"),
    };
    let mut cfg = loaded.map_err(|e| {
        eprintln!("{e}");
        ExitCode::FAILURE
    })?;
    if let Some(d) = data_dir {
        cfg.console.data_dir = d;
    }
    if let Some(b) = broker {
        cfg.broker.url = b;
    }
    if let Some(l) = listen {
        cfg.web.listen = l;
    }
    if let Some(r) = replica {
        cfg.console.replica = r;
    }
    if let Some(u) = database {
        let line = format!("url = {}", toml::Value::String(u));
        cfg.database = toml::from_str(&line).map_err(|e| {
            eprintln!("--database: {e}");
            ExitCode::FAILURE
        })?;
    }
    let problems = cfg.problems("", "(command line)");
    if !problems.is_empty() {
        eprintln!("{}", ConfigError::Invalid(problems));
        return Err(ExitCode::FAILURE);
    }
    Ok(cfg)
}

fn enrol(cfg: &Config, device: &str) -> ExitCode {
    let url = cfg.database.url.as_ref().map(|u| u.expose().to_string());
    let store = match watchpost_console::store::Store::open(url.as_deref(), &cfg.console.data_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("watchpost-console: {e}");
            return ExitCode::FAILURE;
        }
    };
    match watchpost_console::control::enrol_offline(&store, "command line", device) {
        Ok(key) => {
            println!(
                "[control.mqtt]\nurl = \"{}\"\ncontrol_key = \"{key}\"",
                cfg.broker.url
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("watchpost-console: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cfg: Config) -> ExitCode {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let cancel = tokio_util::sync::CancellationToken::new();
        let running = match watchpost_console::start(&cfg, cancel.clone()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot start");
                eprintln!("watchpost-console: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("cannot watch SIGTERM: {e}");
                    return ExitCode::FAILURE;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("stopping");
        cancel.cancel();
        for t in running.tasks {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
        }
        ExitCode::SUCCESS
    })
}
