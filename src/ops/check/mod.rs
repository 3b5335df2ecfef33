//! `tiersync check`: a merchant's first command after configuring. It validates the
//! configuration, proves each credential and scope against the real services with read-only
//! calls, checks the store's directory, and prints one line per check: `OK`, `FAILED` with how
//! to fix it, or `UNPROVEN` for what no read can prove (a Klaviyo key's write scopes, see
//! [`crate::sinks::klaviyo::probe_key`]). It sends nothing that changes anything.

mod services;
mod store;

use std::fmt;
use std::path::Path;
use std::time::Duration;

use crate::config::{LoyaltyPlatform, Settings};

/// How long a check retries a service that is down or slow: a merchant waits at the
/// terminal, and the daemon's `sync.max_retry_time` is minutes.
const RETRY_TIME: Duration = Duration::from_secs(10);

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Proven; what was found.
    Ok(String),
    /// Failed; what is wrong and how to fix it.
    Failed(String),
    /// Not provable without changing something; what proves it.
    Unproven(String),
}

/// One line of the report.
#[derive(Debug, Clone)]
pub struct Line {
    /// What was checked, e.g. `klaviyo key`.
    pub subject: &'static str,
    pub outcome: Outcome,
}

/// Every check, in the order they ran.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    pub lines: Vec<Line>,
}

impl CheckReport {
    fn push(&mut self, subject: &'static str, outcome: Outcome) {
        self.lines.push(Line { subject, outcome });
    }

    /// How many checks failed; tiersync can run when none did (an unproven write scope does
    /// not count).
    pub fn failed(&self) -> usize {
        self.lines
            .iter()
            .filter(|l| matches!(l.outcome, Outcome::Failed(_)))
            .count()
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.lines {
            let (mark, text) = match &line.outcome {
                Outcome::Ok(text) => ("OK", text),
                Outcome::Failed(text) => ("FAILED", text),
                Outcome::Unproven(text) => ("UNPROVEN", text),
            };
            writeln!(f, "{mark:<9} {:<15} {text}", line.subject)?;
        }
        Ok(())
    }
}

/// Loads the configuration at `path` (the defaults alone without one) and runs every check
/// it allows: an invalid configuration is the only line then.
pub async fn check(path: Option<&Path>) -> CheckReport {
    let mut report = CheckReport::default();
    let settings = match Settings::load(path) {
        Ok(settings) => settings,
        Err(error) => {
            report.push("config", Outcome::Failed(crate::http::causes(&error)));
            return report;
        }
    };
    report.push("config", Outcome::Ok(summary(path, &settings)));
    let mut settings = settings;
    settings.sync.max_retry_time = settings.sync.max_retry_time.min(RETRY_TIME);
    store::check(&settings, &mut report);
    services::check(&settings, &mut report).await;
    report
}

/// What the configuration says, in a line.
fn summary(path: Option<&Path>, settings: &Settings) -> String {
    let file = path.map_or_else(
        || "no file: defaults and TIERSYNC__ variables".to_string(),
        |p| p.display().to_string(),
    );
    format!(
        "{file} (shop {}, storefront {}, loyalty app {})",
        settings.shopify.shop,
        if settings.storefront.enabled {
            "on"
        } else {
            "off"
        },
        platform_name(settings.loyalty.platform),
    )
}

/// The loyalty platform as `loyalty.platform` spells it.
fn platform_name(platform: LoyaltyPlatform) -> &'static str {
    match platform {
        LoyaltyPlatform::None => "none",
        LoyaltyPlatform::Smile => "smile",
        LoyaltyPlatform::LoyaltyLion => "loyaltylion",
    }
}
