//! Human renderings of `lock` and `verify`.

use comfy_table::{Attribute, Cell, Color, Table};

use super::human::{fits, table};
use super::{Report, Style};
use crate::commands::lock::LockReport;
use crate::commands::verify::VerifyReport;
use crate::error::ExitStatus;
use crate::migrations::version_label as version;
use crate::verify::{Finding, Level};

impl Report for LockReport {
    fn human(&self, _: &Style) -> String {
        let what = if self.changed { "wrote" } else { "unchanged:" };
        format!(
            "{what} {} from {} migration(s) (head {}) applied on a scratch database at {}\n\
             {} table(s), {} function(s); fingerprint {}\n",
            self.file,
            self.migrations,
            version(self.head),
            self.scratch_server,
            self.tables,
            self.functions,
            &self.fingerprint[..self.fingerprint.len().min(16)]
        )
    }
}

impl Report for VerifyReport {
    fn human(&self, style: &Style) -> String {
        let mut out = format!(
            "target: {}\nhead {}, schema.lock head {}; drift {}\n",
            self.target,
            version(self.head),
            version(self.lock_head),
            if self.drift_compared {
                "compared"
            } else {
                "not compared"
            }
        );
        let shown = if style.verbose {
            &self.findings[..]
        } else {
            &self.findings[..self.findings.len().min(SUMMARY_LIMIT)]
        };
        if !shown.is_empty() {
            let t = findings_table(style, shown);
            if fits(&t, style) {
                out.push_str(&format!("{t}\n"));
            } else {
                out.push_str(&findings_list(style, shown));
            }
        }
        let rest = &self.findings[shown.len()..];
        if !rest.is_empty() {
            out.push_str(&rest_summary(style, rest));
        }
        for a in &self.unmatched_acknowledgements {
            out.push_str(&format!(
                "migrate.toml acknowledges {} on {}, which verify no longer finds: remove it\n",
                a.rule, a.object
            ));
        }
        out.push_str(&format!(
            "{} error(s), {} warning(s), {} info, {} acknowledged\n",
            self.errors, self.warnings, self.info, self.acknowledged
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
}

/// How many findings the report shows in full without --verbose; the rest are counted per rule.
const SUMMARY_LIMIT: usize = 25;

fn level_cell(style: &Style, level: Level) -> Cell {
    let cell = Cell::new(level.as_str());
    if style.color {
        match level {
            Level::Error => cell.fg(Color::Red).add_attribute(Attribute::Bold),
            Level::Warning => cell.fg(Color::Yellow),
            Level::Info => cell.fg(Color::Blue),
        }
    } else if level == Level::Error {
        Cell::new("ERROR")
    } else {
        cell
    }
}

/// A finding's text: message, remedy, and the acknowledgement's reason when it has one.
fn finding_text(f: &Finding) -> String {
    let mut text = format!("{}\n→ {}", f.message, f.remedy);
    if let Some(reason) = &f.acknowledged {
        text.push_str(&format!(
            "\nacknowledged ({}) in migrate.toml: {reason}",
            f.level.as_str()
        ));
    }
    text
}

fn findings_table(style: &Style, findings: &[Finding]) -> Table {
    let mut t = table(style, &["level", "rule", "object", "finding"]);
    for f in findings {
        let level = match &f.acknowledged {
            Some(_) => Cell::new("acknowledged"),
            None => level_cell(style, f.level),
        };
        t.add_row(vec![
            level,
            Cell::new(f.rule.as_str()),
            Cell::new(f.location()),
            Cell::new(finding_text(f)),
        ]);
    }
    t
}

/// The findings as blocks of lines wrapped at spaces, for a terminal too narrow for the
/// table without splitting object names and identifiers mid-word:
///
/// ```text
/// warning rls_enabled_no_policy coach.job_queue
///   row level security is enabled but no policy exists: only service_role and the
///   owner reach its rows
///   → add policies for the roles that need it, or keep it service-only on purpose
/// ```
fn findings_list(style: &Style, findings: &[Finding]) -> String {
    let width = usize::from(style.width.unwrap_or(u16::MAX));
    let mut out = String::new();
    for f in findings {
        let level = match (style.color, f.level, &f.acknowledged) {
            (_, _, Some(_)) => "acknowledged".to_string(),
            (true, Level::Error, _) => format!("\x1b[31;1m{}\x1b[0m", f.level.as_str()),
            (true, Level::Warning, _) => format!("\x1b[33m{}\x1b[0m", f.level.as_str()),
            (true, Level::Info, _) => format!("\x1b[34m{}\x1b[0m", f.level.as_str()),
            (false, Level::Error, _) => "ERROR".to_string(),
            (false, _, _) => f.level.as_str().to_string(),
        };
        out.push_str(&format!("{level} {} {}\n", f.rule.as_str(), f.location()));
        out.push_str(&wrap(&finding_text(f), "  ", width));
    }
    out
}

/// Findings past the summary limit, counted per rule and level.
fn rest_summary(style: &Style, rest: &[Finding]) -> String {
    let mut counts: Vec<(Level, &str, usize)> = Vec::new();
    for f in rest {
        match counts
            .iter_mut()
            .find(|(l, r, _)| *l == f.level && *r == f.rule.as_str())
        {
            Some((_, _, n)) => *n += 1,
            None => counts.push((f.level, f.rule.as_str(), 1)),
        }
    }
    let mut t = table(style, &["level", "rule", "more findings"]);
    for (level, rule, n) in &counts {
        t.add_row(vec![
            level_cell(style, *level),
            Cell::new(rule),
            Cell::new(n),
        ]);
    }
    format!(
        "{} more finding(s), not shown (--verbose or --json lists every one):\n{t}\n",
        rest.len()
    )
}

/// `text` wrapped at spaces to `width` columns, each line after `indent`. A word longer than
/// a line is put on a line of its own, whole: identifiers are never split.
pub(crate) fn wrap(text: &str, indent: &str, width: usize) -> String {
    let room = width.saturating_sub(indent.chars().count()).max(20);
    let mut out = String::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        for word in paragraph.split(' ').filter(|w| !w.is_empty()) {
            let needed =
                line.chars().count() + usize::from(!line.is_empty()) + word.chars().count();
            if !line.is_empty() && needed > room {
                out.push_str(&format!("{indent}{line}\n"));
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        out.push_str(&format!("{indent}{line}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces_and_keeps_long_words_whole() {
        let text = "the index coach.conversation_messages_user_id_created_at_idx is missing here";
        let wrapped = wrap(text, "  ", 30);
        assert_eq!(
            wrapped,
            "  the index\n  coach.conversation_messages_user_id_created_at_idx\n  is missing here\n"
        );
        assert_eq!(wrap("a b", "", 80), "a b\n");
    }
}
