//! The terminal prompt behind `Context::confirm_protected`: asked on stderr, answered on stdin.

use std::io::{BufRead, IsTerminal, Write};

use crate::commands::Confirm;

/// Asks on the terminal; nobody can be asked when stdin is not one.
pub struct TerminalPrompt;

impl Confirm for TerminalPrompt {
    fn ask(&self, question: &str) -> Option<bool> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "{} [y/N] ", crate::redact::mask(question));
        let _ = err.flush();
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer).ok()?;
        Some(matches!(
            answer.trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        ))
    }
}
