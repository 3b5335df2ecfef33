//! `tiersync status` while the daemon runs: the daemon holds the store's lock, so the status
//! comes from its endpoint's `/status` (at `http.listen`, read from the same configuration).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use super::status::Status;
use crate::config::Settings;

/// Why the running daemon could not be asked: one line saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum DaemonStatusError {
    #[error("the daemon holds the store at {store} and its HTTP endpoint is off (http.listen is empty): set http.listen (e.g. \"127.0.0.1:9184\") and restart the daemon, or stop the daemon to read the store directly")]
    Off { store: String },
    #[error("the daemon holds the store at {store} but does not answer at {url} ({cause}): check that http.listen is the one the daemon runs with, or stop the daemon to read the store directly")]
    Unreachable {
        store: String,
        url: String,
        cause: String,
    },
}

/// How long the daemon may take to read its status (a scan of every customer).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Asks the daemon configured by `settings` for its status.
pub async fn ask_daemon(settings: &Settings) -> Result<Status, DaemonStatusError> {
    let store = settings.store.path.display().to_string();
    let Some(listen) = settings.http.listen else {
        return Err(DaemonStatusError::Off { store });
    };
    let url = format!("http://{}/status", reachable(listen));
    let unreachable = |cause: String| DaemonStatusError::Unreachable {
        store: store.clone(),
        url: url.clone(),
        cause,
    };
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .no_proxy()
        .build()
        .map_err(|e| unreachable(innermost(&e)))?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| unreachable(innermost(&e)))?;
    let code = response.status();
    if !code.is_success() {
        let body = response.text().await.unwrap_or_default();
        return Err(unreachable(format!("HTTP {code}: {}", body.trim())));
    }
    response
        .json::<Status>()
        .await
        .map_err(|e| unreachable(format!("an unreadable answer: {}", innermost(&e))))
}

/// The address to connect to for a listening address: a daemon listening on every interface
/// (`0.0.0.0`, `::`) is asked on loopback.
fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port())
        }
        _ => listen,
    }
}

/// The deepest cause of an error ("Connection refused (os error 111)"), which says more
/// than reqwest's own "error sending request".
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_daemon_on_every_interface_is_asked_on_loopback() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(reachable(at("0.0.0.0:9184")), at("127.0.0.1:9184"));
        assert_eq!(reachable(at("[::]:9184")), at("[::1]:9184"));
        assert_eq!(reachable(at("10.0.0.5:9000")), at("10.0.0.5:9000"));
    }
}
