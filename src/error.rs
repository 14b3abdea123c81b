//! Errors that know their exit code (DESIGN §5), and the one place that maps any error to it.

use std::fmt;

use crate::db::sqlstate;

/// The process exit status, mapped to a code in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitStatus {
    /// 0: everything asked for was done.
    Success,
    /// 1: a check failed, a migration failed, or the run was refused.
    Failure,
    /// 2: usage, configuration or input-file error; nothing was touched.
    Usage,
    /// 3: database unreachable, authentication failed, or the lock was not acquired in time.
    Unavailable,
    /// 128 + the signal (130 for SIGINT, 143 for SIGTERM): stopped by a signal, after
    /// cancelling the running statement and recording the interruption.
    Interrupted(i32),
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Unavailable => 3,
            ExitStatus::Interrupted(signal) => (128 + signal).clamp(0, 255) as u8,
        }
    }
}

/// What went wrong, by the exit code it deserves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A malformed migration, seed or config file, a bad argument or URL (exit 2).
    Input,
    /// The run was refused or a check failed (exit 1).
    Refused,
    /// The database could not be reached or locked (exit 3).
    Unavailable,
}

#[derive(Debug)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn input(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Input,
            message: message.into(),
        }
    }

    pub fn refused(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Refused,
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Unavailable,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// A problem in one input file, at a line when one is known.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileProblem {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for FileProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Every problem found in a set of input files; one error so the user sees them all at once.
pub fn file_problems(problems: &[FileProblem]) -> Error {
    let lines: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    Error::input(lines.join("\n"))
}

/// The exit status an error deserves: its own kind where it has one, otherwise what the
/// PostgreSQL error says (connection and authentication failures are "unavailable").
pub fn exit_status(err: &anyhow::Error) -> ExitStatus {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<Error>() {
            return match e.kind {
                ErrorKind::Input => ExitStatus::Usage,
                ErrorKind::Refused => ExitStatus::Failure,
                ErrorKind::Unavailable => ExitStatus::Unavailable,
            };
        }
        if let Some(e) = cause.downcast_ref::<tokio_postgres::Error>() {
            return match e.code() {
                Some(code) if sqlstate::is_unavailable(code) => ExitStatus::Unavailable,
                Some(_) => ExitStatus::Failure,
                None if e.is_closed() => ExitStatus::Unavailable,
                None => ExitStatus::Failure,
            };
        }
        if cause.downcast_ref::<std::io::Error>().is_some() {
            return ExitStatus::Failure;
        }
    }
    ExitStatus::Failure
}
