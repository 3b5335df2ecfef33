//! The `tiersync` command line. Everything it runs lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tiersync::Settings;

#[derive(Parser)]
#[command(
    version,
    about = "Keeps one VIP tier per Shopify customer in sync with Klaviyo"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon against fake Shopify and Klaviyo servers started in-process, with a
    /// generated store, and print what two passes did.
    Demo {
        /// Customers in the generated store.
        #[arg(long, default_value_t = 10_000)]
        customers: usize,
        /// Seed of the generated store.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Run one pass against the services the configuration names, then exit.
    Once {
        /// TOML configuration file (layered over the built-in defaults).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run the daemon: a pass every `sync.poll_interval` until SIGTERM or SIGINT.
    Run {
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo { customers, seed } => {
            tiersync::telemetry::init("warn");
            tiersync::ops::demo::run(tiersync::ops::demo::DemoOptions { customers, seed }).await
        }
        Command::Once { config } => {
            let settings = load(config)?;
            tiersync::telemetry::init("info");
            let report = tiersync::once(settings, shutdown_signal()).await?;
            println!("pass finished\n{report}");
            Ok(())
        }
        Command::Run { config } => {
            let settings = load(config)?;
            tiersync::telemetry::init("info");
            tiersync::run(settings, shutdown_signal()).await
        }
    }
}

fn load(path: Option<PathBuf>) -> anyhow::Result<Settings> {
    Settings::load(path.as_deref()).context("invalid configuration")
}

/// Completes on SIGTERM (systemd stop) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutdown requested; finishing the writes in flight");
}
