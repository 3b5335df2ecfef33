//! A bulk result served at a set pace: `chunk_bytes` at a time, `chunk_delay` apart — a large
//! file over a slow link, so a test can tell a download limited as a whole from one limited
//! per read. A file held whole announces its length (`Content-Length`), as storage does; a
//! bulk query's file, written while it is sent, goes chunked.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;
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

/// The body: the bytes of `pending`, then of each chunk `rest` sends, one frame of at most
/// `chunk_bytes` per `pace`.
pub(crate) struct Paced {
    pending: Bytes,
    /// A file written while it is sent ([`Paced::streamed`]); `None` once it has ended.
    rest: Option<mpsc::Receiver<std::io::Result<Bytes>>>,
    pace: DownloadPace,
    wait: Option<Pin<Box<Sleep>>>,
}

impl Paced {
    /// A file held whole: its length is announced.
    pub fn new(text: Bytes, pace: DownloadPace) -> Paced {
        Paced {
            pending: text,
            rest: None,
            pace,
            wait: None,
        }
    }

    /// A file whose chunks arrive on `rest` as they are written (sent chunked, no length).
    pub fn streamed(rest: mpsc::Receiver<std::io::Result<Bytes>>, pace: DownloadPace) -> Paced {
        Paced {
            pending: Bytes::new(),
            rest: Some(rest),
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
        if let Some(wait) = &mut this.wait {
            if wait.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        while this.pending.is_empty() {
            let Some(rest) = &mut this.rest else {
                return Poll::Ready(None);
            };
            match rest.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => this.pending = chunk,
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(None) => this.rest = None,
            }
        }
        let take = this.pace.chunk_bytes.max(1).min(this.pending.len());
        let chunk = this.pending.split_to(take);
        this.wait = (!this.pace.chunk_delay.is_zero())
            .then(|| Box::pin(tokio::time::sleep(this.pace.chunk_delay)));
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.rest.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.rest {
            None => SizeHint::with_exact(self.pending.len() as u64),
            Some(_) => SizeHint::default(),
        }
    }
}
