//! The one place SQLSTATEs are classified, on the driver's constants (and PostgreSQL's
//! classes, the first two characters): what an error code means for the exit status and
//! for what the tool does next.

use tokio_postgres::error::SqlState;

/// The class of a code: its first two characters (`08` connection exception, ...).
fn class(code: &SqlState) -> &str {
    code.code().get(..2).unwrap_or("")
}

/// Could not get a usable session (exit 3): connection exceptions (08), invalid
/// authorization (28), unknown database (3D000), too many connections (53300), and the
/// server shutting down or not accepting connections yet (57P0x).
pub(crate) fn is_unavailable(code: &SqlState) -> bool {
    matches!(class(code), "08" | "28")
        || *code == SqlState::INVALID_CATALOG_NAME
        || *code == SqlState::TOO_MANY_CONNECTIONS
        || is_shutdown(code)
}

/// The session is gone mid-run (connection exception, or the server shutting down): nothing
/// more can be sent on it.
pub(crate) fn is_connection_lost(code: &SqlState) -> bool {
    class(code) == "08" || is_shutdown(code)
}

/// 57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now, 57P04 database
/// dropped, 57P05 idle session timeout.
fn is_shutdown(code: &SqlState) -> bool {
    code.code().starts_with("57P0")
}

/// The data given is at fault: a data exception (22) or an integrity constraint violation (23).
pub(crate) fn is_bad_data(code: &SqlState) -> bool {
    matches!(class(code), "22" | "23")
}

/// A data exception (22) alone: a value that does not fit its column's type.
pub(crate) fn is_data_exception(code: &SqlState) -> bool {
    class(code) == "22"
}

/// Syntax error or access rule violation (42): the statement's text or privileges are at fault.
pub(crate) fn is_syntax_or_access(code: &SqlState) -> bool {
    class(code) == "42"
}

/// The catalog changed under a read: a deparsing function found an object gone (XX000 "cache
/// lookup failed"), or a table, object or function vanished (42P01, 42704, 42883).
pub(crate) fn is_catalog_race(code: &SqlState) -> bool {
    [
        SqlState::INTERNAL_ERROR,
        SqlState::UNDEFINED_TABLE,
        SqlState::UNDEFINED_OBJECT,
        SqlState::UNDEFINED_FUNCTION,
    ]
    .contains(code)
}

/// The error's code, when the server sent one and `is` says yes to it.
pub(crate) fn error_is(e: &tokio_postgres::Error, is: fn(&SqlState) -> bool) -> bool {
    e.code().is_some_and(is)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        assert!(is_unavailable(&SqlState::TOO_MANY_CONNECTIONS));
        assert!(is_unavailable(&SqlState::INVALID_PASSWORD));
        assert!(is_unavailable(&SqlState::CONNECTION_FAILURE));
        assert!(is_unavailable(&SqlState::ADMIN_SHUTDOWN));
        assert!(!is_unavailable(&SqlState::UNIQUE_VIOLATION));
        assert!(is_connection_lost(&SqlState::CRASH_SHUTDOWN));
        assert!(!is_connection_lost(&SqlState::TOO_MANY_CONNECTIONS));
        assert!(is_bad_data(&SqlState::FOREIGN_KEY_VIOLATION));
        assert!(is_bad_data(&SqlState::INVALID_TEXT_REPRESENTATION));
        assert!(!is_bad_data(&SqlState::INSUFFICIENT_PRIVILEGE));
        assert!(is_syntax_or_access(&SqlState::SYNTAX_ERROR));
        assert!(is_catalog_race(&SqlState::UNDEFINED_TABLE));
        assert!(!is_catalog_race(&SqlState::SYNTAX_ERROR));
    }
}
