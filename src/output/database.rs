//! `database create|drop` in words.

use super::{Report, Style};
use crate::commands::database::DatabaseReport;

impl Report for DatabaseReport {
    fn human(&self, _: &Style) -> String {
        let name = &self.database;
        let target = &self.target;
        match (self.action, self.changed) {
            ("create", true) => format!("created database \"{name}\" ({target})"),
            ("create", false) => {
                format!("database \"{name}\" already exists; nothing to do ({target})")
            }
            (_, true) => format!("dropped database \"{name}\" ({target})"),
            (_, false) => format!("database \"{name}\" does not exist; nothing to do ({target})"),
        }
    }
}
