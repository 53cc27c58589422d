//! `watchpost check-config PATH`: every problem of a config file with its location.

use std::path::Path;
use std::process::ExitCode;
use watchpost::config::{Config, ConfigError};

pub fn check_config(path: &Path) -> ExitCode {
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
