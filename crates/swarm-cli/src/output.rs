//! Printing: aligned tables and plain sentences for people, one JSON document for
//! scripts. stdout carries the result only; progress and notes go to stderr, and
//! spinners only when stderr is a terminal.

use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// stdout buffer for results: large outputs (`list`) in few writes.
const OUT_BUFFER: usize = 64 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    /// stderr is a terminal: spinners and prompts are allowed.
    pub interactive: bool,
    /// NO_COLOR unset and a terminal.
    pub color: bool,
}

impl Output {
    pub fn new(json: bool, no_color: bool) -> Self {
        let interactive = std::io::stderr().is_terminal();
        Self {
            json,
            interactive,
            color: interactive && !no_color,
        }
    }

    /// The one JSON document of a `--json` run.
    pub fn json<T: Serialize + ?Sized>(&self, value: &T) -> anyhow::Result<()> {
        // Buffered: stdout flushes at every newline, and pretty JSON has many. Large:
        // `list --json` writes megabytes, and each write is a syscall.
        let mut out = std::io::BufWriter::with_capacity(OUT_BUFFER, std::io::stdout().lock());
        let written = serde_json::to_writer_pretty(&mut out, value)
            .map_err(std::io::Error::from)
            .and_then(|()| writeln!(out))
            .and_then(|()| out.flush());
        Ok(reader_gone_is_fine(written)?)
    }

    /// A JSON document already encoded as [`Output::json`] would (with its newline).
    pub fn json_document(&self, document: &[u8]) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        reader_gone_is_fine(out.write_all(document).and_then(|()| out.flush()))
    }

    /// A line of the human result, on stdout.
    pub fn line(&self, text: impl AsRef<str>) {
        // `swarm list | head` closes the pipe early; that is not an error worth a word.
        let _ = writeln!(std::io::stdout(), "{}", text.as_ref());
    }

    /// A note for people (skipped under --json, whose document carries it), on stderr.
    pub fn note(&self, text: impl AsRef<str>) {
        if !self.json {
            eprintln!("{}", text.as_ref());
        }
    }

    /// A warning: always on stderr, also under --json (stdout stays one document).
    pub fn warn(&self, text: impl AsRef<str>) {
        let prefix = if self.color {
            "\x1b[33mwarning:\x1b[0m"
        } else {
            "warning:"
        };
        eprintln!("{prefix} {}", text.as_ref());
    }

    pub fn error(&self, text: impl AsRef<str>) {
        let prefix = if self.color {
            "\x1b[31merror:\x1b[0m"
        } else {
            "error:"
        };
        eprintln!("{prefix} {}", text.as_ref());
    }

    /// Columns padded to the widest cell, two spaces apart (like kubectl and gh).
    pub fn table(&self, header: &[&str], rows: Vec<Vec<String>>) -> std::io::Result<()> {
        let mut out = std::io::BufWriter::with_capacity(OUT_BUFFER, std::io::stdout().lock());
        let written = write_table(&mut out, header, &rows).and_then(|()| out.flush());
        reader_gone_is_fine(written)
    }

    /// A spinner on stderr for a terminal; a hidden one otherwise.
    pub fn spinner(&self, message: impl Into<String>) -> ProgressBar {
        if !self.interactive || self.json {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new_spinner();
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed:.dim}") {
            bar.set_style(style);
        }
        bar.set_message(message.into());
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }

    /// A finished step, shown above the spinner on a terminal.
    pub fn step(&self, bar: &ProgressBar, text: impl AsRef<str>) {
        if self.interactive && !self.json {
            let mark = if self.color {
                "\x1b[32m✓\x1b[0m"
            } else {
                "✓"
            };
            bar.println(format!("{mark} {}", text.as_ref()));
        }
    }
}

/// A closed stdout (the reader exited, as `head` does) ends output quietly.
fn reader_gone_is_fine(result: std::io::Result<()>) -> std::io::Result<()> {
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn write_table(
    out: &mut impl std::io::Write,
    header: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let header: Vec<String> = header.iter().map(|h| h.to_uppercase()).collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(width) = widths.get_mut(i) {
                *width = (*width).max(cell.chars().count());
            }
        }
    }
    // One line buffer for all rows: a list can have 10,000 of them.
    let mut line = String::new();
    for row in std::iter::once(&header).chain(rows) {
        line.clear();
        for (i, (cell, width)) in row.iter().zip(&widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            // Writing to a String cannot fail.
            let _ = write!(line, "{cell:<width$}");
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// `2048` → `2 GB`, `1536` → `1536 MB`.
pub fn memory(mb: u32) -> String {
    if mb.is_multiple_of(1024) {
        format!("{} GB", mb / 1024)
    } else {
        format!("{mb} MB")
    }
}

/// Bytes in binary units: `512 B`, `1.5 KiB`, `2.0 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Seconds as `3d 4h`, `2h 5m`, `4m 10s` or `12s`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) if s == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut out = Vec::new();
        write_table(
            &mut out,
            &["name", "status", "note"],
            &[
                vec!["a".into(), "running".into(), String::new()],
                vec!["long-name".into(), "x".into(), "ok".into()],
            ],
        )
        .expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "NAME       STATUS   NOTE\na          running\nlong-name  x        ok\n"
        );
    }

    #[test]
    fn human_units() {
        assert_eq!(memory(2048), "2 GB");
        assert_eq!(memory(1536), "1536 MB");
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(10 << 30), "10.0 GiB");
        assert_eq!(bytes(u64::MAX), "16777216.0 TiB");
        assert_eq!(duration(12), "12s");
        assert_eq!(duration(250), "4m 10s");
        assert_eq!(duration(1800), "30m");
        assert_eq!(duration(7500), "2h 5m");
        assert_eq!(duration(273_600), "3d 4h");
    }
}
