//! `/readyz`: whether the daemon is doing its job, as a probe or an alert sees it.
//!
//! Ready means a pass succeeded recently — within two poll intervals, so one slow or failed
//! pass is tolerated but a daemon stuck or failing pass after pass is not — and no destination
//! is stopped by a refused credential (the daemon runs on, but writes to it only pile up).

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Why the daemon is not ready, one reason a line; `Ok` when it is.
pub fn readiness(
    now: DateTime<Utc>,
    last_success: Option<DateTime<Utc>>,
    poll_interval: Duration,
    stopped: &[String],
) -> Result<(), Vec<String>> {
    let mut reasons: Vec<String> = stopped
        .iter()
        .map(|s| format!("destination stopped: {s}"))
        .collect();
    let limit = poll_interval * 2;
    match last_success {
        None => reasons.push("no pass has succeeded since the daemon started".to_string()),
        Some(at) => {
            let age = (now - at).to_std().unwrap_or_default();
            if age > limit {
                reasons.push(format!(
                    "the last successful pass ended {} s ago, more than 2 × sync.poll_interval ({} s)",
                    age.as_secs(),
                    limit.as_secs()
                ));
            }
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLL: Duration = Duration::from_secs(300);

    fn at(seconds_ago: i64) -> Option<DateTime<Utc>> {
        Some(now() - chrono::Duration::seconds(seconds_ago))
    }

    fn now() -> DateTime<Utc> {
        "2026-03-01T12:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_recent_success_with_every_destination_running_is_ready() {
        assert_eq!(readiness(now(), at(0), POLL, &[]), Ok(()));
        assert_eq!(
            readiness(now(), at(600), POLL, &[]),
            Ok(()),
            "exactly 2 × poll"
        );
    }

    #[test]
    fn a_success_older_than_two_poll_intervals_is_not_ready() {
        assert_eq!(
            readiness(now(), at(601), POLL, &[]),
            Err(vec![
                "the last successful pass ended 601 s ago, more than 2 × sync.poll_interval (600 s)"
                    .to_string()
            ])
        );
    }

    #[test]
    fn no_success_yet_is_not_ready() {
        let reasons = readiness(now(), None, POLL, &[]).unwrap_err();
        assert_eq!(
            reasons,
            vec!["no pass has succeeded since the daemon started"]
        );
    }

    #[test]
    fn a_stopped_destination_is_not_ready_even_right_after_a_success() {
        let stopped = vec!["klaviyo: Klaviyo refused the API key (401)".to_string()];
        assert_eq!(
            readiness(now(), at(1), POLL, &stopped),
            Err(vec![
                "destination stopped: klaviyo: Klaviyo refused the API key (401)".to_string()
            ])
        );
        let both = readiness(now(), None, POLL, &stopped).unwrap_err();
        assert_eq!(both.len(), 2, "every reason is given: {both:?}");
    }
}
