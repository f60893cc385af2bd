//! `logs -f` through a controller: its server-sent events, read as log lines.

use futures::StreamExt as _;
use futures::stream::BoxStream;
use swarm::LogLine;

use crate::Failure;

use super::{Remote, workspace};

impl Remote {
    /// New log lines as the server streams them (server-sent events), until the
    /// connection ends.
    pub async fn follow_logs(
        &self,
        name: &str,
    ) -> Result<BoxStream<'static, Result<LogLine, Failure>>, Failure> {
        let path = workspace(name, "/logs/stream");
        let response = self
            .streaming
            .get(self.url(&path))
            .header(reqwest::header::AUTHORIZATION, self.authorization()?)
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|error| self.transport(&error))?;
        let status = response.status();
        if !status.is_success() {
            let text = response
                .text()
                .await
                .map_err(|error| self.transport(&error))?;
            return Err(self.refusal(status, &path, &text));
        }
        let url = self.target.shown_url().to_string();
        let events = ServerSentEvents::new(response.bytes_stream().boxed());
        let lines = futures::stream::unfold(events, |mut events| async move {
            events.next_event().await.map(|event| (event, events))
        })
        .filter_map(move |event| {
            let item = match event {
                Err(error) => Some(Err(Failure {
                    code: 1,
                    message: format!("the log follow from {url} ended: {error}"),
                })),
                Ok(event) => log_line_of(&event, &url),
            };
            std::future::ready(item)
        });
        Ok(lines.boxed())
    }
}

/// One server-sent event: its type (`message` when unnamed) and its data lines.
#[derive(Debug, PartialEq, Eq)]
struct ServerSentEvent {
    kind: String,
    data: String,
}

/// A `log` event as a log line, an `error` event as the failure it reports; other
/// events (none yet) are skipped, so a newer server's additions do not break us.
fn log_line_of(event: &ServerSentEvent, url: &str) -> Option<Result<LogLine, Failure>> {
    match event.kind.as_str() {
        "log" => Some(serde_json::from_str(&event.data).map_err(|error| Failure {
            code: 1,
            message: format!(
                "a log line from {url} could not be read ({error}); is it a `swarm serve` of this version?"
            ),
        })),
        "error" => Some(Err(Failure {
            code: 1,
            message: format!("the server at {url} could not follow the logs: {}", event.data),
        })),
        _ => None,
    }
}

/// Reads `text/event-stream` (the WHATWG format) from a byte stream: events end at a
/// blank line; `:` lines are comments (keep-alives).
struct ServerSentEvents {
    bytes: BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: Vec<u8>,
}

impl ServerSentEvents {
    fn new(bytes: BoxStream<'static, reqwest::Result<bytes::Bytes>>) -> Self {
        Self {
            bytes,
            buffer: Vec::new(),
        }
    }

    /// The next event with data; `None` when the stream ends.
    async fn next_event(&mut self) -> Option<Result<ServerSentEvent, reqwest::Error>> {
        loop {
            while let Some(block) = self.take_block() {
                if let Some(event) = parse_event(&block) {
                    return Some(Ok(event));
                }
            }
            match self.bytes.next().await? {
                Ok(chunk) => self.buffer.extend_from_slice(&chunk),
                Err(error) => return Some(Err(error)),
            }
        }
    }

    /// The text up to the next blank line, taken off the buffer.
    fn take_block(&mut self) -> Option<String> {
        self.normalize_line_ends();
        let end = self.buffer.windows(2).position(|pair| pair == b"\n\n")?;
        let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
        Some(String::from_utf8_lossy(&block[..end]).into_owned())
    }
}

impl ServerSentEvents {
    /// Turns `\r\n` and `\r` line ends into `\n`, in bytes (a chunk may end inside a
    /// UTF-8 character). A `\r` at the very end waits for the next chunk: it may be
    /// the first half of a `\r\n`.
    fn normalize_line_ends(&mut self) {
        let settled = if self.buffer.last() == Some(&b'\r') {
            self.buffer.len() - 1
        } else {
            self.buffer.len()
        };
        if !self.buffer[..settled].contains(&b'\r') {
            return;
        }
        let mut normalized = Vec::with_capacity(self.buffer.len());
        let mut at = 0;
        while at < settled {
            if self.buffer[at] == b'\r' {
                normalized.push(b'\n');
                if self.buffer.get(at + 1) == Some(&b'\n') {
                    at += 1;
                }
            } else {
                normalized.push(self.buffer[at]);
            }
            at += 1;
        }
        normalized.extend_from_slice(&self.buffer[settled..]);
        self.buffer = normalized;
    }
}

fn parse_event(block: &str) -> Option<ServerSentEvent> {
    let mut kind = None;
    let mut data: Option<String> = None;
    for line in block.split('\n') {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => kind = Some(value.to_owned()),
            "data" => match &mut data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => data = Some(value.to_owned()),
            },
            _ => {}
        }
    }
    Some(ServerSentEvent {
        kind: kind.unwrap_or_else(|| "message".to_owned()),
        data: data?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events come out whole however the bytes are cut, with keep-alive comments and
    /// data-less blocks skipped and any line ending accepted.
    #[tokio::test]
    async fn server_sent_events_are_read_across_chunk_boundaries() {
        let text = ": keep-alive\n\nevent: log\ndata: {\"a\":1}\n\nevent: error\r\ndata: one\r\ndata:two\r\n\r\nevent: nothing\r\rdata: plain é\n\n";
        for cut in 1..text.len() {
            let chunks: Vec<reqwest::Result<bytes::Bytes>> = text
                .as_bytes()
                .chunks(cut)
                .map(|chunk| Ok(bytes::Bytes::copy_from_slice(chunk)))
                .collect();
            let mut events = ServerSentEvents::new(futures::stream::iter(chunks).boxed());
            let mut seen = Vec::new();
            while let Some(event) = events.next_event().await {
                let event = event.expect("no transport error");
                seen.push((event.kind, event.data));
            }
            assert_eq!(
                seen,
                [
                    ("log".to_owned(), "{\"a\":1}".to_owned()),
                    ("error".to_owned(), "one\ntwo".to_owned()),
                    ("message".to_owned(), "plain é".to_owned()),
                ],
                "chunks of {cut}"
            );
        }
    }

    #[test]
    fn log_events_become_lines_error_events_failures_and_others_are_skipped() {
        let event = |kind: &str, data: &str| ServerSentEvent {
            kind: kind.to_owned(),
            data: data.to_owned(),
        };
        let line = r#"{"timestamp":"2026-12-02T13:00:00Z","message":"hi","level":"info","instance":"m1","region":"ams"}"#;
        let parsed = log_line_of(&event("log", line), "http://s").expect("a line");
        assert_eq!(parsed.expect("valid").message, "hi");
        let failed = log_line_of(&event("error", "gone"), "http://s")
            .expect("a failure")
            .expect_err("an error event fails");
        assert!(failed.message.contains("gone") && failed.message.contains("http://s"));
        assert!(
            log_line_of(&event("log", "{"), "http://s")
                .unwrap()
                .is_err()
        );
        assert!(log_line_of(&event("message", "x"), "http://s").is_none());
    }
}
