//! A bulk result served at a set pace: `chunk_bytes` at a time, `chunk_delay` apart — a large
//! file over a slow link, so a test can tell a download limited as a whole from one limited
//! per read. The length is announced (`Content-Length`), as storage does.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Sleep;

/// How the bulk result URL sends a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadPace {
    /// Bytes per chunk (at least 1).
    pub chunk_bytes: usize,
    /// Wait before each chunk after the first.
    pub chunk_delay: Duration,
}

impl Default for DownloadPace {
    /// As fast as loopback goes, in 64 KiB chunks.
    fn default() -> Self {
        DownloadPace {
            chunk_bytes: 64 * 1024,
            chunk_delay: Duration::ZERO,
        }
    }
}

/// The body: `text` from `sent` on, one chunk per `pace`.
pub(crate) struct Paced {
    text: Arc<String>,
    sent: usize,
    pace: DownloadPace,
    wait: Option<Pin<Box<Sleep>>>,
}

impl Paced {
    pub fn new(text: Arc<String>, pace: DownloadPace) -> Paced {
        Paced {
            text,
            sent: 0,
            pace,
            wait: None,
        }
    }
}

impl Body for Paced {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        if this.sent >= this.text.len() {
            return Poll::Ready(None);
        }
        if let Some(wait) = &mut this.wait {
            if wait.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        let end = (this.sent + this.pace.chunk_bytes.max(1)).min(this.text.len());
        let chunk = Bytes::copy_from_slice(&this.text.as_bytes()[this.sent..end]);
        this.sent = end;
        this.wait = (!this.pace.chunk_delay.is_zero())
            .then(|| Box::pin(tokio::time::sleep(this.pace.chunk_delay)));
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.sent >= self.text.len()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact((self.text.len() - self.sent) as u64)
    }
}
