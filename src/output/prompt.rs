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
        // Read on a thread of its own: a signal (Ctrl-C, a closed terminal) answers "no" at
        // once, where a read on this thread held the runtime, and the signal with it, until a
        // line came (the reader is left blocked; the process ends soon after).
        let (answered, answer) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let read = std::io::stdin().lock().read_line(&mut line).map(|_| line);
            let _ = answered.send(read);
        });
        loop {
            if crate::db::session::interrupted().is_some() {
                let _ = writeln!(err);
                return Some(false);
            }
            match answer.recv_timeout(std::time::Duration::from_millis(50)) {
                Ok(line) => {
                    return Some(matches!(
                        line.ok()?.trim().to_ascii_lowercase().as_str(),
                        "y" | "yes"
                    ))
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
    }
}
