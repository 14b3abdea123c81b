//! Progress of a run: the engine's `Reporter`, drawn (or not) here.

use std::sync::Mutex;
use std::time::Duration;

use std::io::Write;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::db::session::ServerMessage;
use crate::engine::Reporter;

/// A line on stderr (redacted), unless --quiet: server messages and lock waits are said as
/// they happen, terminal or not (never on stdout, which --json owns).
fn say(line: &str) {
    if !quiet() {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{}", crate::redact::mask(line));
    }
}

/// --quiet: nothing but errors on stderr.
fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Set once by the printer for --quiet.
pub(crate) static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// For --json, --quiet, and a stderr that is not a terminal.
pub struct NoProgress;

impl Reporter for NoProgress {
    fn start(&self, _: u64, _: &str) {}
    fn migration(&self, _: &str) {}
    fn finish(&self) {}
    fn server_message(&self, message: &ServerMessage) {
        say(&format!("server {message}"));
    }
    fn waiting(&self, message: &str) {
        say(message);
    }
}

/// A spinner line on stderr naming the migration that is running, which of how many it is,
/// and how long it has been running: `⠹ up 0056_coach_jobs.sql (20/22) 6s`. It redraws on a
/// steady tick, so the line is never older than a tenth of a second (a bar redrawn only on
/// updates kept showing a migration that had finished long before).
#[derive(Default)]
pub struct Bar(Mutex<Option<ProgressBar>>);

/// How often the line is redrawn.
const TICK: Duration = Duration::from_millis(100);

impl Reporter for Bar {
    fn start(&self, total: u64, verb: &str) {
        if total == 0 {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style =
            ProgressStyle::with_template("{spinner} {prefix} {msg} ({pos}/{len}) {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_prefix(verb.to_string());
        bar.enable_steady_tick(TICK);
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
    }

    fn migration(&self, name: &str) {
        if let Some(bar) = self.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            // The position is the migration now running (1-based); the clock is its own.
            bar.inc(1);
            bar.set_message(name.to_string());
            bar.reset_elapsed();
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.0.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }

    fn server_message(&self, message: &ServerMessage) {
        self.println(&format!("server {message}"));
    }

    fn waiting(&self, message: &str) {
        self.println(message);
    }
}

impl Bar {
    /// `say`, without breaking the line being drawn.
    fn println(&self, line: &str) {
        if quiet() {
            return;
        }
        let line = crate::redact::mask(line);
        match self.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            Some(bar) => bar.println(line),
            None => say(&line),
        }
    }
}
