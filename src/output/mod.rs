//! Rendering: human tables (comfy-table) on stdout, `--json` as exactly one document, progress
//! bars (indicatif) on stderr only when stderr is a terminal, errors on stderr. Everything
//! written passes through `redact::mask`.

mod database;
mod human;
mod lint;
mod progress;
mod promote;
mod prompt;
mod seed;
mod verify;

use std::io::{IsTerminal, Write};

use serde::Serialize;

use crate::cli::{ColorChoice, GlobalArgs};
use crate::error::ExitStatus;
use crate::redact::mask;
pub use lint::{findings_lines, findings_table};
pub use progress::{Bar, NoProgress};
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
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
    /// The width tables must fit: `$COLUMNS`, else the terminal's; None (no limit) when
    /// stdout is a pipe or a file.
    pub width: Option<u16>,
    /// `--verbose`: long reports in full instead of summarised.
    pub verbose: bool,
}

pub struct Printer {
    json: bool,
    quiet: bool,
    style: Style,
}

impl Printer {
    pub fn new(json: bool, quiet: bool) -> Printer {
        progress::QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
        Printer {
            json,
            quiet,
            style: Style {
                color: colour(ColorChoice::Auto),
                width: width(),
                verbose: false,
            },
        }
    }

    /// The printer the global options ask for: `--json`, `--quiet`, `--verbose`, `--color`.
    pub fn from_args(global: &GlobalArgs) -> Printer {
        let mut printer = Printer::new(global.json, global.quiet);
        printer.style.color = colour(global.color);
        printer.style.verbose = global.verbose;
        printer
    }

    /// Progress only for a person watching: stderr a terminal that can redraw a line
    /// (not `TERM=dumb`), no --json or --quiet.
    pub fn progress(&self) -> Box<dyn crate::engine::Reporter> {
        if !self.json && !self.quiet && std::io::stderr().is_terminal() && !dumb_terminal() {
            Box::new(Bar::default())
        } else {
            Box::new(NoProgress)
        }
    }

    /// Prints a report; returns the exit status it means.
    pub fn emit<R: Report>(&self, report: &R) -> ExitStatus {
        // A run a signal wound down exits 128 + the signal: the document says the same.
        let status = match crate::db::session::interrupted() {
            Some(signal) => ExitStatus::Interrupted(signal),
            None => report.status(),
        };
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
        match (report.problem(), crate::db::session::interrupted()) {
            (Some(problem), _) => write_err(&format!("error: {problem}")),
            // The signal stopped nothing the report shows: what it lists finished first (a
            // statement that caught the cancel, or a signal that came as the last one
            // committed). Said, so that the exit status is not the only trace.
            (None, Some(signal)) => write_err(&format!(
                "interrupted by {}: what is reported above had finished before the signal could \
                 stop it; nothing after it was started",
                crate::db::session::signal_name(signal)
            )),
            (None, None) => {}
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

/// Whether to colour: `always`, `never`, or (auto) when stdout is a terminal that is not
/// `TERM=dumb` and `NO_COLOR` is unset or empty.
fn colour(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal()
                && !dumb_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

fn dumb_terminal() -> bool {
    std::env::var_os("TERM").is_some_and(|t| t == "dumb")
}

/// `$COLUMNS` when set (as `ls` and clap honour it), else the terminal's width when stdout
/// is one.
fn width() -> Option<u16> {
    if let Some(columns) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<u16>().ok())
        .filter(|&c| c > 0)
    {
        return Some(columns);
    }
    if !std::io::stdout().is_terminal() {
        return None;
    }
    // comfy-table asks the terminal (crossterm) when stdout is one.
    comfy_table::Table::new().width()
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
