//! Logging: `tracing` to stderr, one line per event, fields first. The level comes from
//! `RUST_LOG` (e.g. `RUST_LOG=tiersync=debug`), default `info`; the format from `log.format`
//! (see config/default.toml): colour codes only on a terminal, so journald and log files get
//! clean text, or one JSON object per line.

use std::io::IsTerminal;
use std::sync::OnceLock;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Whether lines are JSON, once [`init`] has run: the final error must then be JSON too.
static JSON: OnceLock<bool> = OnceLock::new();

pub fn init(default_level: &str, format: LogFormat) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let json = format == LogFormat::Json;
    let installed = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        let colour = format == LogFormat::Auto && std::io::stderr().is_terminal();
        builder.with_ansi(colour).try_init()
    };
    if installed.is_ok() {
        let _ = JSON.set(json);
    }
}

/// Reports the error that ends the command: a JSON line when the logs are JSON (a shipper
/// parsing stderr line by line must not meet one plain line), else `error: …` on stderr.
/// Each fact is said once: a layer whose message already quotes its cause does not get the
/// cause printed again after it.
pub fn fatal(error: &anyhow::Error) {
    let text = crate::http::said_once(error.chain());
    if JSON.get() == Some(&true) {
        tracing::error!(error = text, "tiersync stopped on an error");
    } else {
        eprintln!("error: {text}");
    }
}
