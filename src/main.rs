//! The `tiersync` command line. Everything it runs lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tiersync::Settings;

/// sled and the daily recalculation allocate millions of small values; mimalloc does that at
/// a fraction of glibc malloc's cost (BENCHMARKS.md, "The daily recalculation at scale").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// generated store, and print what two passes did. Only in builds with the `demo` feature
    /// (the default); the production build (`--no-default-features`) has no fake servers.
    Demo {
        /// Customers in the generated store.
        #[arg(long, default_value_t = 10_000)]
        customers: usize,
        /// Seed of the generated store.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Keep the checkpoint store in this new directory, to explore it afterwards with
        /// `explain` and `calibrate` (default: a temporary directory).
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// Check the configuration, each credential and scope (read-only calls to Shopify,
    /// Klaviyo and the loyalty app) and the store directory; print one line per check. The
    /// first command to run after configuring. Changes nothing; exits non-zero when a check
    /// failed.
    Check {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run one pass against the services the configuration names, then exit.
    Once {
        /// TOML configuration file (layered over the built-in defaults).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Read the sources and plan the writes, print them, and send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run the daemon: a pass every `sync.poll_interval` until SIGTERM or SIGINT.
    Run {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Explain one customer's tier: inputs, the rule that placed them, state and clocks,
    /// transitions, and what each destination acknowledged. Reads the store only.
    Explain {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Email, numeric Shopify customer id, or customer GID.
        customer: String,
    },
    /// Per destination: acknowledged, pending and refused writes (with the API's error), and
    /// the cursors. Reads the store only, or asks the running daemon's HTTP endpoint when the
    /// daemon holds the store; needs no credentials. Exits 3 when a destination is STOPPED.
    Status {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Read every destination back (Klaviyo profiles, Shopify tags and metafields, the
    /// loyalty app's tiers), compare with the desired state (refreshed from the sources
    /// first) and print the drift per destination and kind. Works on a lost or fresh store.
    Reconcile {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Enqueue the fixes and deliver them.
        #[arg(long)]
        repair: bool,
        /// With --repair: plan the fixes and print them, send nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Send again every write and event a destination refused (parked with its error in
    /// `status`), then run one pass.
    Retry {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Rebuild a lost, corrupt or outdated store: move it aside, re-read the sources and
    /// reconcile the destinations (what they already show is adopted, not re-written).
    Rebuild {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Show how customers and revenue spread over levels and candidate thresholds, and
    /// propose thresholds for a target VIP share. Changes nothing.
    Calibrate {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Percent of customers the proposal puts in VIP levels.
        #[arg(long, default_value_t = 20.0)]
        target_share: f64,
    },
    /// The VIP program's health from the store: tier distribution, VIP share of revenue,
    /// repeat purchases, monthly tier movement, lapse rate, CLV per level and loyalty-app
    /// disagreements. Reads the store only; needs no credentials.
    Report {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Also write the report as one self-contained HTML page with charts.
        #[arg(long)]
        html: Option<PathBuf>,
    },
    /// Remove one customer's data from the store (a GDPR erasure request, Shopify's
    /// `customers/redact`), and say what the destinations still hold. Stop the daemon first.
    Forget {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Email, numeric Shopify customer id, or customer GID.
        customer: String,
    },
}

/// Exit status of a pass that ran but left writes in an outbox, and of `status` when a
/// destination is STOPPED (README, "Commands"): a timer or script running `once` or a check
/// running `status` must see them, and tell them from a failure (status 1).
const EXIT_UNDELIVERED: u8 = 3;

/// A pass that ran but left writes undelivered; exits with [`EXIT_UNDELIVERED`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Undelivered(String);

fn main() -> ExitCode {
    tiersync::allocator::configure();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new().expect("the tokio runtime starts");
    let outcome = runtime.block_on(dispatch(cli.command));
    // Requests still in flight after a stop were answered and recorded; anything else the
    // runtime holds (the signal task, idle connections) need not be waited for.
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tiersync::telemetry::fatal(&error);
            if error.is::<Undelivered>() {
                ExitCode::from(EXIT_UNDELIVERED)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo {
            customers,
            seed,
            store,
        } => {
            tiersync::telemetry::init("warn", Default::default());
            tiersync::ops::demo::run(tiersync::ops::DemoOptions {
                customers,
                seed,
                store,
            })
            .await
        }
        Command::Check { config } => {
            tiersync::telemetry::init("warn", Default::default());
            let report = tiersync::ops::check::check(config.as_deref()).await;
            print!("{report}");
            match report.failed() {
                0 => {
                    println!("every check passed");
                    Ok(())
                }
                failed => anyhow::bail!(
                    "{failed} check(s) failed (FAILED above): fix them and run `tiersync check` again"
                ),
            }
        }
        Command::Once {
            config,
            dry_run: true,
        } => {
            let settings = load(config)?;
            tiersync::telemetry::init("info", settings.log.format);
            let (report, planned) = tiersync::dry_run(settings, shutdown_signal()).await?;
            println!("dry run: nothing was sent\n{report}\n{planned}");
            Ok(())
        }
        Command::Once { config, .. } => {
            let settings = load(config)?;
            tiersync::telemetry::init("info", settings.log.format);
            let report = tiersync::once(settings, shutdown_signal()).await?;
            println!("pass finished\n{report}");
            finished(&report)
        }
        Command::Run { config } => {
            let settings = load(config)?;
            tiersync::telemetry::init("info", settings.log.format);
            tiersync::run(settings, shutdown_signal()).await
        }
        Command::Explain { config, customer } => {
            let settings = load_without_credentials(config)?;
            tiersync::telemetry::init("warn", settings.log.format);
            let store = tiersync::ops::explain::open_store(&settings)?;
            print!(
                "{}",
                tiersync::ops::explain::explain(&store, &settings, &customer)?
            );
            Ok(())
        }
        Command::Status { config } => {
            let settings = load_without_credentials(config)?;
            tiersync::telemetry::init("warn", settings.log.format);
            let status = tiersync::ops::status::current(&settings).await?;
            print!("{status}");
            let stopped = status.stopped();
            if !stopped.is_empty() {
                return Err(Undelivered(format!(
                    "{} destination(s) STOPPED because their credential was refused (see above); fix it and restart the daemon",
                    stopped.len()
                ))
                .into());
            }
            Ok(())
        }
        Command::Reconcile {
            config,
            repair,
            dry_run,
        } => {
            let settings = load(config)?;
            tiersync::telemetry::init("warn", settings.log.format);
            let (report, planned) =
                tiersync::reconcile(settings, repair, dry_run, shutdown_signal()).await?;
            println!("{report}");
            if let Some(planned) = planned {
                print!("{planned}");
            }
            Ok(())
        }
        Command::Retry { config } => {
            let settings = load(config)?;
            tiersync::telemetry::init("info", settings.log.format);
            let (count, report) = tiersync::retry(settings, shutdown_signal()).await?;
            println!("{count} refused writes and events un-parked\npass finished\n{report}");
            finished(&report)
        }
        Command::Rebuild { config } => {
            let settings = load(config)?;
            tiersync::telemetry::init("info", settings.log.format);
            let (aside, report) = tiersync::rebuild(settings, shutdown_signal()).await?;
            if let Some(aside) = aside {
                println!("the old store was moved to {}", aside.display());
            }
            println!("{report}");
            Ok(())
        }
        Command::Calibrate {
            config,
            target_share,
        } => {
            let settings = load_without_credentials(config)?;
            tiersync::telemetry::init("warn", settings.log.format);
            let store = tiersync::ops::explain::open_store(&settings)?;
            print!(
                "{}",
                tiersync::ops::calibrate::calibrate(&store, &settings, target_share)?
            );
            Ok(())
        }
        Command::Report { config, html } => {
            let settings = load_without_credentials(config)?;
            tiersync::telemetry::init("warn", settings.log.format);
            let store = tiersync::ops::explain::open_store(&settings)?;
            let report = tiersync::ops::report::report(&store, &settings)?;
            print!("{report}");
            if let Some(path) = html {
                std::fs::write(&path, tiersync::ops::report::html::render(&report))
                    .with_context(|| format!("writing the HTML report to {}", path.display()))?;
                println!("\nHTML report written to {}", path.display());
            }
            Ok(())
        }
        Command::Forget { config, customer } => {
            let settings = load_without_credentials(config)?;
            tiersync::telemetry::init("warn", settings.log.format);
            let store = tiersync::ops::forget::open_store(&settings)?;
            print!(
                "{}",
                tiersync::ops::forget::forget(&store, &settings, &customer)?
            );
            Ok(())
        }
    }
}

/// A one-shot pass's outcome for the exit status: a refused credential, a stop or writes
/// that kept failing leave work in the outbox, which a script or timer must see.
fn finished(report: &tiersync::PassReport) -> anyhow::Result<()> {
    if !report.stopped.is_empty() {
        return Err(Undelivered(format!(
            "{} destination(s) stopped because their credential was refused (see STOPPED above); their writes wait in the outbox for a run with a working credential",
            report.stopped.len()
        ))
        .into());
    }
    let left = report.undelivered();
    if report.interrupted {
        return Err(Undelivered(format!(
            "stopped before the pass finished; {left} write(s) and event(s) wait in the outbox for the next run"
        ))
        .into());
    }
    if left > 0 {
        return Err(Undelivered(format!(
            "{left} write(s) and event(s) were not delivered (the warnings above say why); they wait in the outbox for the next pass"
        ))
        .into());
    }
    Ok(())
}

fn load(path: Option<PathBuf>) -> anyhow::Result<Settings> {
    Settings::load(path.as_deref()).context("invalid configuration")
}

/// The configuration of a command that only reads the store or asks the daemon: the
/// credentials may be absent from its environment.
fn load_without_credentials(path: Option<PathBuf>) -> anyhow::Result<Settings> {
    Settings::load_without_credentials(path.as_deref()).context("invalid configuration")
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
