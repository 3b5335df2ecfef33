//! A bulk operation's JSONL result as a stream: lines are split as chunks arrive (only the
//! unfinished line is held, never the file), decoded, and handed to a [`BulkSink`] one by
//! one. A result runs to hundreds of MB at a million orders.

use serde::de::DeserializeOwned;

use crate::http::{self, body_excerpt, ApiError, Reply};

pub(super) const ENDPOINT: &str = "shopify bulk result download";
/// What a 401/403 from the download points at: the link, not a tiersync setting (it is
/// pre-signed storage and no token is sent), so it must not stop the destination as a refused
/// credential would.
const LINK: &str = "the bulk result link (signed by Shopify, it expires: the next pass runs the bulk operation again)";

/// Where a streamed bulk result goes, one decoded line at a time.
///
/// A download that fails part-way (a dropped connection, no data for
/// `shopify.bulk_read_timeout`, a garbled line) starts over from the first line, after
/// [`BulkSink::restart`]: the sink drops what it buffered, and may see lines again that it
/// already applied — so what it applies before the end must be idempotent.
pub trait BulkSink<T> {
    /// Why the sink stopped (not retried: e.g. the store failed).
    type Error: From<ApiError>;
    /// The download (re)starts at the first line.
    fn restart(&mut self);
    fn line(&mut self, item: T) -> Result<(), Self::Error>;
}

/// Splits a byte stream into lines as its chunks arrive, holding only the unfinished line.
#[derive(Debug, Default)]
pub(super) struct LineSplitter {
    partial: Vec<u8>,
    /// Lines completed so far (for error messages).
    lines: usize,
}

impl LineSplitter {
    /// Calls `each(line number, line)` (from 1, without the `\n`) for every line `chunk`
    /// completes.
    pub fn push<E>(
        &mut self,
        chunk: &[u8],
        each: &mut impl FnMut(usize, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|b| *b == b'\n') {
            self.lines += 1;
            if self.partial.is_empty() {
                each(self.lines, &rest[..end])?;
            } else {
                self.partial.extend_from_slice(&rest[..end]);
                each(self.lines, &self.partial)?;
                self.partial.clear();
            }
            rest = &rest[end + 1..];
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    /// The last line, when the stream does not end with `\n`.
    pub fn finish<E>(
        mut self,
        each: &mut impl FnMut(usize, &[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.partial.is_empty() {
            return Ok(());
        }
        self.lines += 1;
        each(self.lines, &self.partial)
    }
}

/// A line decoded as `T`, or `None` for a blank line; an error names the line number and the
/// field path.
fn decode_line<T: DeserializeOwned>(number: usize, line: &[u8]) -> Result<Option<T>, ApiError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    ApiError::decode("shopify bulk result", line)
        .map(Some)
        .map_err(|e| match e {
            ApiError::Malformed {
                endpoint,
                path,
                detail,
            } => ApiError::Malformed {
                endpoint,
                path: format!("line {number}: {path}"),
                detail,
            },
            other => other,
        })
}

/// Why an attempt stopped: the transfer (retried) or the sink (not).
enum Stop<E> {
    Transfer(ApiError),
    Sink(E),
}

/// One download attempt of `url` through `client` into `sink`, from the first line. `Err` is
/// a transfer failure worth retrying; `Ok(Err)` the sink's own failure.
pub(super) async fn stream<T, S>(
    client: &reqwest::Client,
    url: &str,
    sink: &mut S,
) -> Result<Result<(), S::Error>, ApiError>
where
    T: DeserializeOwned,
    S: BulkSink<T>,
{
    let transport = |error| ApiError::Transport {
        endpoint: ENDPOINT,
        error,
    };
    let mut response = client.get(url).send().await.map_err(transport)?;
    let status = response.status().as_u16();
    if !response.status().is_success() {
        // An error body is small: read it whole for the message.
        let retry_after = http::retry_after(response.headers());
        let body = response.bytes().await.map_err(transport)?;
        let reply = Reply {
            status,
            retry_after,
            body,
        };
        if matches!(status, 401 | 403) {
            return Err(ApiError::Rejected {
                endpoint: ENDPOINT,
                status,
                detail: format!("{}; refused: {LINK}", body_excerpt(&reply.body)),
            });
        }
        // Never `Ok` for a status that is no success.
        return reply
            .into_body(ENDPOINT, LINK, body_excerpt)
            .map(|_| Ok(()));
    }
    sink.restart();
    let mut splitter = LineSplitter::default();
    let mut each = |number: usize, line: &[u8]| -> Result<(), Stop<S::Error>> {
        match decode_line(number, line).map_err(Stop::Transfer)? {
            Some(item) => sink.line(item).map_err(Stop::Sink),
            None => Ok(()),
        }
    };
    let streamed = async {
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Stop::Transfer(transport(e)))?
        {
            splitter.push(&chunk, &mut each)?;
        }
        splitter.finish(&mut each)
    };
    match streamed.await {
        Ok(()) => Ok(Ok(())),
        Err(Stop::Transfer(error)) => Err(error),
        Err(Stop::Sink(error)) => Ok(Err(error)),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// `lines` synthetic JSONL lines of about 200 bytes, produced as they are read.
    struct Synthetic {
        next: usize,
        lines: usize,
        pending: Vec<u8>,
    }

    impl Read for Synthetic {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let mut n = 0;
            while n < buf.len() {
                if self.pending.is_empty() {
                    if self.next == self.lines {
                        break;
                    }
                    self.pending = format!(
                        "{{\"id\":\"gid://shopify/Order/{}\",\"note\":\"{}\"}}\n",
                        self.next,
                        "x".repeat(160)
                    )
                    .into_bytes();
                    self.next += 1;
                }
                let k = (buf.len() - n).min(self.pending.len());
                buf[n..n + k].copy_from_slice(&self.pending[..k]);
                self.pending.drain(..k);
                n += k;
            }
            Ok(n)
        }
    }

    #[test]
    fn splits_lines_across_chunks_and_holds_one_line_at_most() {
        let lines = 100_000; // about 20 MB
        let mut body = Synthetic {
            next: 0,
            lines,
            pending: Vec::new(),
        };
        let mut splitter = LineSplitter::default();
        let (mut seen, mut last) = (0usize, String::new());
        let mut longest = 0usize;
        let mut each = |number: usize, line: &[u8]| -> Result<(), ()> {
            seen += 1;
            assert_eq!(number, seen);
            longest = longest.max(line.len());
            last = String::from_utf8(line.to_vec()).expect("utf-8");
            Ok(())
        };
        // Odd chunk sizes, so lines straddle chunks.
        let mut buf = vec![0u8; 8_191];
        let (mut held, mut reads) = (0usize, 0usize);
        loop {
            reads += 1;
            let n = body
                .read(&mut buf[..1 + reads * 7_919 % 8_190])
                .expect("read");
            if n == 0 {
                break;
            }
            splitter.push(&buf[..n], &mut each).expect("lines");
            held = held.max(splitter.partial.capacity());
        }
        splitter.finish(&mut each).expect("last line");
        assert_eq!(seen, lines);
        assert!(last.contains(&format!("Order/{}\"", lines - 1)), "{last}");
        // Whole lines inside a chunk are handed on from the chunk itself; only a line cut by
        // a chunk boundary is copied, so the buffer never outgrows one line.
        assert!(
            held <= 2 * longest,
            "held {held} bytes for lines of {longest}: a line buffer, not the body"
        );
    }

    #[test]
    fn a_last_line_without_newline_and_blank_lines() {
        let mut splitter = LineSplitter::default();
        let mut got = Vec::new();
        let mut each = |n: usize, line: &[u8]| -> Result<(), ()> {
            got.push((n, String::from_utf8_lossy(line).into_owned()));
            Ok(())
        };
        splitter.push(b"{\"a\":1}\n\n{\"b\"", &mut each).unwrap();
        splitter.push(b":2}", &mut each).unwrap();
        splitter.finish(&mut each).unwrap();
        let lines: Vec<(usize, &str)> = got.iter().map(|(n, l)| (*n, l.as_str())).collect();
        assert_eq!(lines, [(1, "{\"a\":1}"), (2, ""), (3, "{\"b\":2}")]);
        assert_eq!(decode_line::<serde_json::Value>(2, b"  ").unwrap(), None);
        let error = decode_line::<Vec<u8>>(7, b"{}").unwrap_err().to_string();
        assert!(error.contains("line 7"), "{error}");
    }
}
