//! Renderings of `lint` findings: a human table, and GitHub workflow annotations.

use comfy_table::Cell;

use super::human::table;
use super::{Report, Style};
use crate::cli::LintFormat;
use crate::commands::lint::LintReport;
use crate::error::ExitStatus;
use crate::lint::{Finding, Level};

/// The findings as a table: file:line, rule, level, message, remedy.
pub fn findings_table(style: &Style, findings: &[Finding]) -> String {
    let mut t = table(style, &["where", "rule", "level", "message", "remedy"]);
    for f in findings {
        t.add_row(vec![
            Cell::new(format!("{}:{}", f.file, f.line)),
            Cell::new(&f.rule),
            Cell::new(f.level.as_str()),
            Cell::new(&f.message),
            Cell::new(&f.remedy),
        ]);
    }
    t.to_string()
}

/// One line per finding: `file:line: level rule: message`.
pub fn findings_lines(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| {
            format!(
                "  {}:{}: {} {}: {}",
                f.file,
                f.line,
                f.level.as_str(),
                f.rule,
                f.message
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `::error file=...,line=...,col=...,title=...::message` (GitHub Actions workflow commands).
pub fn github(findings: &[Finding]) -> String {
    findings
        .iter()
        .map(|f| {
            let command = match f.level {
                Level::Error => "error",
                Level::Warning => "warning",
                Level::Info => "notice",
            };
            format!(
                "::{command} file={},line={},col={},title={}::{}",
                property(&f.file),
                f.line,
                f.column,
                property(&format!("migrate lint: {}", f.rule)),
                data(&format!("{} — {}", f.message, f.remedy))
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Escapes a workflow command's message.
fn data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command's property value.
fn property(text: &str) -> String {
    data(text).replace(':', "%3A").replace(',', "%2C")
}

impl Report for LintReport {
    fn human(&self, style: &Style) -> String {
        if self.format == LintFormat::Github {
            return github(&self.findings);
        }
        let mut out = String::new();
        if !self.findings.is_empty() {
            out.push_str(&findings_table(style, &self.findings));
            out.push('\n');
        }
        let runner = if self.set_by_runner.is_empty() {
            String::new()
        } else {
            format!("; {} set by the runner", self.set_by_runner.join(" and "))
        };
        out.push_str(&format!(
            "{} file(s) linted for PostgreSQL {}{runner}: {} error(s), {} warning(s), {} \
             acknowledged\n",
            self.files,
            self.pg_version,
            self.errors,
            self.warnings,
            self.acknowledged.len()
        ));
        out
    }

    fn status(&self) -> ExitStatus {
        if self.errors > 0 {
            ExitStatus::Failure
        } else {
            ExitStatus::Success
        }
    }

    fn problem(&self) -> Option<String> {
        (self.errors > 0).then(|| {
            format!(
                "lint found {} error(s); fix them, or acknowledge each with `-- squawk-ignore \
                 <rule>` above its statement",
                self.errors
            )
        })
    }
}
