//! What the engine tells whoever watches a run (uv's pattern: the library defines the
//! reporter, the printer implements it once). The engine never prints.

use crate::db::session::ServerMessage;

/// What a run reports while it works: the engine calls `migration` as each migration (or
/// seed file) starts. Implemented by `output` for its progress line; a run that nobody
/// watches gets one that draws nothing.
pub trait Reporter {
    /// A run of `total` items starts; `verb` says what it does (`up`, `down`, `seed`).
    fn start(&self, total: u64, verb: &str);
    /// The item `name` (a file name) starts now.
    fn migration(&self, name: &str);
    /// The run is over (finished, failed or interrupted): nothing is left on screen.
    fn finish(&self);
    /// A WARNING or NOTICE the server sent while a migration ran.
    fn server_message(&self, message: &ServerMessage);
    /// The run waits (for the migration lock), and says why.
    fn waiting(&self, message: &str);
}

/// Finishes the report however the run ends, an early `?` or a panic included, so an error
/// never leaves a bar on screen. Returned by [`start`].
#[must_use = "the run is reported finished when the guard drops"]
pub struct Finish<'a>(&'a dyn Reporter);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        self.0.finish();
    }
}

/// Starts a run on `reporter`; the guard finishes it.
pub fn start<'a>(reporter: &'a dyn Reporter, total: u64, verb: &str) -> Finish<'a> {
    reporter.start(total, verb);
    Finish(reporter)
}
