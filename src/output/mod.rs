//! Rendering: human tables (comfy-table) on stdout, `--json` as exactly one document, progress
//! bars (indicatif) on stderr only when stderr is a terminal, errors on stderr. Everything
//! written passes through `redact::mask`.

mod human;
mod lint;
mod progress;
mod promote;
mod prompt;
mod seed;
mod verify;

use std::io::{IsTerminal, Write};

use serde::Serialize;

use crate::error::ExitStatus;
use crate::redact::mask;
pub use lint::{findings_lines, findings_table};
pub use progress::{Bar, NoProgress, Progress};
pub use prompt::TerminalPrompt;

/// A command's result, renderable as text or JSON.
pub trait Report: Serialize {
    fn human(&self, style: &Style) -> String;

    /// The exit status this report means (a failed migration or check is 1).
    fn status(&self) -> ExitStatus {
        ExitStatus::Success
    }

    /// A problem to print on stderr, whatever the format.
    fn problem(&self) -> Option<String> {
        None
    }
}

/// How human output looks.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

pub struct Printer {
    json: bool,
    quiet: bool,
    style: Style,
}

impl Printer {
    pub fn new(json: bool, quiet: bool) -> Printer {
        let color = std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Printer {
            json,
            quiet,
            style: Style { color },
        }
    }

    /// Progress bars only for a person watching: stderr a terminal, no --json or --quiet.
    pub fn progress(&self) -> Box<dyn Progress> {
        if !self.json && !self.quiet && std::io::stderr().is_terminal() {
            Box::new(Bar::default())
        } else {
            Box::new(NoProgress)
        }
    }

    /// Prints a report; returns the exit status it means.
    pub fn emit<R: Report>(&self, report: &R) -> ExitStatus {
        let status = report.status();
        if self.json {
            let mut value = serde_json::to_value(report).unwrap_or(serde_json::Value::Null);
            if let serde_json::Value::Object(map) = &mut value {
                map.insert("ok".into(), (status == ExitStatus::Success).into());
                map.insert("exit_code".into(), status.code().into());
            }
            write_out(&to_json(&value));
        } else if !self.quiet {
            let text = report.human(&self.style);
            if !text.is_empty() {
                write_out(&text);
            }
        }
        if let Some(problem) = report.problem() {
            write_err(&format!("error: {problem}"));
        }
        status
    }

    /// Prints an error with its whole cause chain on stderr (and a JSON document with --json).
    pub fn error(&self, err: &anyhow::Error, status: ExitStatus) {
        let message = format!("{err:#}");
        if self.json {
            let value = serde_json::json!({ "ok": false, "exit_code": status.code(), "error": mask(&message) });
            write_out(&to_json(&value));
        }
        write_err(&format!("error: {message}"));
    }
}

fn to_json(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".into())
}

fn write_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", mask(text.trim_end_matches('\n')));
}

fn write_err(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", mask(text.trim_end_matches('\n')));
}
