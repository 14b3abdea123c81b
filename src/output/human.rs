//! Human renderings of each report.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Attribute, Cell, Color, ColumnConstraint, ContentArrangement, Table};

use super::{Report, Style};
use crate::commands::baseline::BaselineReport;
use crate::commands::check::CheckReport;
use crate::commands::completions::{CompletionsReport, ManReport};
use crate::commands::local::LocalReport;
use crate::commands::new::NewReport;
use crate::commands::repair::RepairReport;
use crate::commands::run::RunReport;
use crate::commands::status::StatusReport;
use crate::error::ExitStatus;
use crate::migrations::plan::State;
use crate::migrations::{short, version_label as version};

pub fn table(style: &Style, header: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        // Width and colour are decided once, by the Printer (--color, $COLUMNS, TERM).
        .force_no_tty();
    if style.color {
        table.enforce_styling();
    }
    if let Some(width) = style.width {
        table.set_width(width);
    }
    table.set_header(
        header
            .iter()
            .map(|h| Cell::new(h).add_attribute(Attribute::Bold)),
    );
    table
}

/// Whether a table fits the width without wrapping any cell.
pub(crate) fn fits(t: &Table, style: &Style) -> bool {
    let Some(width) = style.width else {
        return true;
    };
    let columns = t.column_max_content_widths();
    // "│ " + " ┆ " between columns + " │", and a cell's padding is in its content width.
    let natural: usize =
        columns.iter().map(|&w| usize::from(w)).sum::<usize>() + 3 * columns.len() + 1;
    natural <= usize::from(width)
}

impl Report for RunReport {
    fn human(&self, style: &Style) -> String {
        let mut out = format!("target: {}\n", self.target);
        if self.dry_run {
            if self.planned.is_empty() {
                out.push_str(&format!(
                    "dry run: nothing to {} (head {})\n",
                    self.command,
                    version(self.head)
                ));
                return out;
            }
            out.push_str(&format!(
                "dry run: {} would run {} migration(s); nothing was written\n",
                self.command,
                self.planned.len()
            ));
            for p in &self.planned {
                let tx = if p.transactional {
                    ""
                } else {
                    ", outside a transaction"
                };
                out.push_str(&format!(
                    "\n-- {} ({}{tx})\n{}\n",
                    p.file,
                    p.direction.as_str(),
                    p.sql.trim()
                ));
            }
            return out;
        }
        if self.steps.is_empty() && self.skipped.is_empty() && self.failure.is_none() {
            out.push_str(&format!(
                "nothing to {}: head is {}\n",
                self.command,
                version(self.head)
            ));
            return out;
        }
        if !self.steps.is_empty() {
            let mut t = table(style, &["version", "name", "direction", "ms"]);
            for s in &self.steps {
                t.add_row(vec![
                    Cell::new(format!("{:04}", s.version)),
                    Cell::new(&s.name),
                    Cell::new(s.direction.as_str()),
                    Cell::new(s.duration_ms),
                ]);
            }
            out.push_str(&format!("{t}\n"));
        }
        for s in &self.skipped {
            out.push_str(&format!(
                "skipped {:04} {} ({}): {}\n",
                s.version,
                s.name,
                s.direction.as_str(),
                s.reason
            ));
        }
        let verb = if self.atomic {
            "applied atomically"
        } else {
            "done"
        };
        let skipped = if self.skipped.is_empty() {
            String::new()
        } else {
            format!(
                ", {} skipped (another run did it first)",
                self.skipped.len()
            )
        };
        out.push_str(&format!(
            "{} migration(s) {verb}{skipped}; head is {}\n",
            self.steps.len(),
            version(self.head)
        ));
        for v in &self.out_of_order {
            out.push_str(&format!("note: {v:04} was applied out of order\n"));
        }
        out
    }

    fn status(&self) -> ExitStatus {
        match &self.failure {
            Some(f) if f.connection_lost => ExitStatus::Unavailable,
            Some(_) => ExitStatus::Failure,
            None => ExitStatus::Success,
        }
    }

    fn problem(&self) -> Option<String> {
        let f = self.failure.as_ref()?;
        let mut after = f.state.clone();
        // Only the steps in the failed direction came before it: a redo's reverts are not
        // "applied" (and those it did not apply again stay reverted).
        let count = |direction: &str| {
            self.steps
                .iter()
                .filter(|s| s.direction.as_str() == direction)
                .count()
        };
        let done = count(f.direction.as_str());
        // A redo's migration another run reverted first is not where its steps stopped.
        let stopped_here = !self.skipped.iter().any(|s| s.version == f.version);
        // Another run changed the applied migrations between this run's transactions
        // (through a pooler): what this run did before may not stay as it left it.
        let raced = f.error.starts_with(crate::engine::GUARD_CONTEXT);
        let verb = if f.direction.as_str() == "down" {
            "reverted"
        } else {
            "applied"
        };
        if !self.atomic && !f.connection_lost && done > 0 && stopped_here {
            after.push_str(&if raced {
                format!(
                    "; this run {verb} {done} migration(s) before it, which the other run may \
                     have changed since"
                )
            } else {
                format!("; {done} migration(s) before it stay {verb}")
            });
        }
        let not_again = count("down").saturating_sub(count("up"));
        if !self.atomic && f.direction.as_str() != "down" && not_again > 0 {
            after.push_str(&if raced {
                format!("; this run reverted {not_again} migration(s) and did not apply them again")
            } else {
                format!(
                    "; {not_again} migration(s) this run reverted stay reverted (`migrate up` \
                     applies them again)"
                )
            });
        }
        if f.connection_lost {
            after = format!("{after}\ntarget: {}", self.target);
        }
        Some(format!(
            "{} of {} failed at {}: {}\n{after}",
            f.direction.as_str(),
            f.name,
            f.location(),
            f.error
        ))
    }
}

impl Report for StatusReport {
    fn human(&self, style: &Style) -> String {
        let rows = self.rows(true);
        let header = StatusReport::header(true);
        let t = match draw_plain(header, &rows, style) {
            Some(drawn) => drawn,
            None => {
                let mut t = self.table(style, header, rows);
                if !fits(&t, style) {
                    // The name starts with the domain: the column is the first to go on a
                    // narrow terminal, so names are not split mid-word.
                    t = self.table(style, StatusReport::header(false), self.rows(false));
                }
                t.to_string()
            }
        };
        let c = &self.counts;
        let mut out = format!("target: {}\n{t}\n", self.target);
        out.push_str(&format!(
            "{} applied, {} pending, {} changed, {} missing, {} dirty; head is {}\n",
            c.applied,
            c.pending,
            c.changed,
            c.missing,
            c.dirty,
            version(self.head)
        ));
        for row in &self.migrations {
            if let Some(problem) = &row.problem {
                out.push_str(&format!("! {problem}\n"));
            }
            if row.empty {
                out.push_str(&format!(
                    "note: {} has an empty UP section; write it before `migrate up`\n",
                    row.file.as_deref().unwrap_or(&row.name)
                ));
            }
        }
        out
    }
}

impl StatusReport {
    fn header(with_domain: bool) -> &'static [&'static str] {
        if with_domain {
            &["version", "name", "domain", "state", "applied at (UTC)"]
        } else {
            &["version", "name", "state", "applied at (UTC)"]
        }
    }

    /// The cells' text, without colour: a problem state is in capitals with a `!`, which
    /// colour replaces.
    fn rows(&self, with_domain: bool) -> Vec<Vec<String>> {
        self.migrations
            .iter()
            .map(|row| {
                let state = if row.empty {
                    "pending\n(empty)".to_string()
                } else if row.state.is_problem() {
                    format!("{} !", row.state.as_str().to_uppercase())
                } else {
                    row.state.as_str().to_string()
                };
                let mut cells = vec![format!("{:04}", row.version), row.name.clone()];
                if with_domain {
                    cells.push(row.domain.clone().unwrap_or_else(|| "-".into()));
                }
                cells.push(state);
                cells.push(row.applied_at.as_deref().map_or("-".into(), seconds));
                cells
            })
            .collect()
    }

    fn table(&self, style: &Style, header: &[&str], rows: Vec<Vec<String>>) -> Table {
        let mut t = table(style, header);
        let state_column = header.len() - 2;
        for (row, texts) in self.migrations.iter().zip(rows) {
            let cells = texts.into_iter().enumerate().map(|(i, text)| {
                if i != state_column || !style.color {
                    return Cell::new(text);
                }
                let label = if row.empty {
                    "pending\n(empty)"
                } else {
                    row.state.as_str()
                };
                let state = Cell::new(label);
                match row.state {
                    State::Applied => state.fg(Color::Green),
                    State::Pending => state.fg(Color::Yellow),
                    State::Changed | State::Missing | State::Dirty => {
                        state.fg(Color::Red).add_attribute(Attribute::Bold)
                    }
                }
            });
            t.add_row(cells.collect::<Vec<_>>());
        }
        // Only the name may wrap; versions, states and times stay whole.
        let name = 1;
        for (i, column) in t.column_iter_mut().enumerate() {
            if i != name {
                column.set_constraint(ColumnConstraint::ContentWidth);
            }
        }
        t
    }
}

/// The table `table(style, header)` with `rows` added draws, drawn directly, for the output
/// most tables are: no colour, every cell printable ASCII, fitting the width. comfy-table
/// lays out, splits and pads every cell through several allocations: `status` of a thousand
/// migrations spent 8 ms of its 20 ms in it, this takes well under one. The bytes are the
/// same (unit tests compare the two on generated tables, multi-line cells included); `None`
/// when the table needs comfy-table: colour, other characters, or wrapping to the width.
pub(crate) fn draw_plain(header: &[&str], rows: &[Vec<String>], style: &Style) -> Option<String> {
    if style.color {
        return None;
    }
    let plain = |text: &str| {
        text.bytes()
            .all(|b| b == b'\n' || (b' '..=b'~').contains(&b))
    };
    let mut widths: Vec<usize> = vec![1; header.len()];
    for cells in std::iter::once(header.to_vec())
        .chain(rows.iter().map(|r| r.iter().map(String::as_str).collect()))
    {
        if cells.len() != header.len() {
            return None;
        }
        for (width, text) in widths.iter_mut().zip(&cells) {
            if !plain(text) {
                return None;
            }
            for line in text.split('\n') {
                *width = (*width).max(line.len());
            }
        }
    }
    let natural = widths.iter().sum::<usize>() + 3 * widths.len() + 1;
    if style.width.is_some_and(|w| natural > usize::from(w)) {
        return None;
    }
    let mut out = String::with_capacity((natural + 8) * (rows.len() + 4));
    let rule = |out: &mut String, [left, fill, cross, right]: [char; 4]| {
        out.push(left);
        for (i, width) in widths.iter().enumerate() {
            if i > 0 {
                out.push(cross);
            }
            out.extend(std::iter::repeat_n(fill, width + 2));
        }
        out.push(right);
        out.push('\n');
    };
    let row = |out: &mut String, cells: &[&str]| {
        let lines: Vec<Vec<&str>> = cells.iter().map(|c| c.split('\n').collect()).collect();
        let height = lines.iter().map(Vec::len).max().unwrap_or(1);
        for n in 0..height {
            out.push('│');
            for (i, (cell, width)) in lines.iter().zip(&widths).enumerate() {
                if i > 0 {
                    out.push('┆');
                }
                let line = cell.get(n).copied().unwrap_or("");
                out.push(' ');
                out.push_str(line);
                out.extend(std::iter::repeat_n(' ', width - line.len() + 1));
            }
            out.push_str("│\n");
        }
    };
    rule(&mut out, ['┌', '─', '┬', '┐']);
    row(&mut out, header);
    rule(&mut out, ['╞', '═', '╪', '╡']);
    for cells in rows {
        row(
            &mut out,
            &cells.iter().map(String::as_str).collect::<Vec<_>>(),
        );
    }
    rule(&mut out, ['└', '─', '┴', '┘']);
    out.pop();
    Some(out)
}

/// `2026-11-30T18:48:03.133Z` as `2026-11-30 18:48:03`: a table cell that fits 80 columns.
fn seconds(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..19)) {
        (Some(date), Some(time)) => format!("{date} {time}"),
        _ => rfc3339.to_string(),
    }
}

impl Report for NewReport {
    fn human(&self, _: &Style) -> String {
        format!("created {}\n", self.file)
    }
}

impl Report for CheckReport {
    fn human(&self, _: &Style) -> String {
        let mut out = format!(
            "{} migration file(s) parse; versions are unique; head is {}\n",
            self.migrations,
            version(self.head)
        );
        for path in &self.irreversible {
            out.push_str(&format!("note: {path} is irreversible (empty DOWN)\n"));
        }
        for path in &self.empty {
            out.push_str(&format!(
                "note: {path} has an empty UP section; write it before `migrate up`\n"
            ));
        }
        if !self.lock_outdated() {
            out.push_str(&format!("{} is current\n", self.lock));
        }
        if !self.lint.findings.is_empty() {
            out.push_str(&format!("{}\n", super::findings_lines(&self.lint.findings)));
        }
        out.push_str(&format!(
            "lint: {} error(s), {} warning(s), {} acknowledged\n",
            self.lint.errors,
            self.lint.findings.len() - self.lint.errors,
            self.lint.acknowledged
        ));
        out
    }

    fn status(&self) -> ExitStatus {
        if self.lock_outdated() || self.lint.errors > 0 {
            ExitStatus::Failure
        } else {
            ExitStatus::Success
        }
    }

    fn problem(&self) -> Option<String> {
        let lint = (self.lint.errors > 0).then(|| {
            let errors: Vec<_> = self
                .lint
                .findings
                .iter()
                .filter(|f| f.level == crate::lint::Level::Error)
                .cloned()
                .collect();
            format!(
                "lint found {} error(s) — fix them, or acknowledge each with `-- squawk-ignore \
                 <rule>` above its statement:\n{}",
                self.lint.errors,
                super::findings_lines(&errors)
            )
        });
        let lock = self.lock_problem();
        match (lock, lint) {
            (Some(a), Some(b)) => Some(format!("{a}\n{b}")),
            (a, b) => a.or(b),
        }
    }
}

impl CheckReport {
    fn lock_problem(&self) -> Option<String> {
        if self.lock_missing {
            return Some(format!(
                "{} does not exist — run `migrate lock` and commit it",
                self.lock
            ));
        }
        if !self.lock_outdated() {
            return None;
        }
        let mut lines: Vec<String> = self
            .stale
            .iter()
            .map(|s| format!("  {} ({})", s.file, s.change.as_str()))
            .collect();
        if let Some(schemas) = &self.lock_schemas {
            lines.push(format!(
                "  made for managed schemas [{}], not the ones migrate.toml lists",
                schemas.join(", ")
            ));
        }
        Some(format!(
            "{} is stale — run `migrate lock`\n{}",
            self.lock,
            lines.join("\n")
        ))
    }
}

impl Report for BaselineReport {
    fn human(&self, _: &Style) -> String {
        format!(
            "target: {}\nrecorded {} migration(s) up to {:04} as applied without running them\n",
            self.target,
            self.recorded.len(),
            self.version
        )
    }
}

impl Report for RepairReport {
    fn human(&self, _: &Style) -> String {
        let what = match self.action {
            "accepted_checksum" => format!(
                "accepted the current checksum of {:04} {} ({} → {})",
                self.version,
                self.name,
                short(&self.old_checksum),
                self.new_checksum.as_deref().map_or("", short)
            ),
            "cleared_dirty" => format!(
                "cleared the dirty mark of {:04} {}; it counts as applied",
                self.version, self.name
            ),
            "forgotten" => format!(
                "removed the record of {:04} {}; it counts as pending",
                self.version, self.name
            ),
            _ => format!("{:04} {} needs no repair", self.version, self.name),
        };
        format!("target: {}\n{what}\n", self.target)
    }
}

impl Report for LocalReport {
    fn human(&self, _: &Style) -> String {
        let c = &self.cluster;
        if self.action == "url" {
            return c.url.clone().unwrap_or_default();
        }
        let state = if c.running {
            format!(
                "running on port {}",
                c.port.map_or("?".into(), |p| p.to_string())
            )
        } else if c.initialized {
            "stopped".to_string()
        } else {
            "not created yet (`migrate local start` creates it)".to_string()
        };
        let mut out = format!(
            "local cluster: {state}\ndata: {}\nserver binaries: {}\n",
            c.data_dir, c.bindir
        );
        if let Some(url) = &c.url {
            out.push_str(&format!("url: {url}\n"));
        }
        out
    }
}

impl Report for CompletionsReport {
    fn human(&self, _: &Style) -> String {
        self.script.clone()
    }
}

impl Report for ManReport {
    fn human(&self, _: &Style) -> String {
        if self.files.is_empty() {
            return self.page.clone();
        }
        let mut out = format!("wrote {} man page(s):\n", self.files.len());
        for file in &self.files {
            out.push_str(&format!("  {file}\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// comfy-table's drawing of the same table, the reference `draw_plain` must match.
    fn comfy(header: &[&str], rows: &[Vec<String>], style: &Style) -> String {
        let mut t = table(style, header);
        for row in rows {
            t.add_row(row.clone());
        }
        for column in t.column_iter_mut().skip(1) {
            column.set_constraint(ColumnConstraint::ContentWidth);
        }
        t.to_string()
    }

    fn style(width: Option<u16>) -> Style {
        Style {
            color: false,
            width,
            verbose: false,
        }
    }

    #[test]
    fn draws_what_comfy_table_draws() {
        let header = ["version", "name", "state"];
        let rows = vec![
            vec!["0001".to_string(), "coach_init".into(), "applied".into()],
            vec!["0002".into(), "".into(), "pending\n(empty)".into()],
            vec!["0003".into(), "x".into(), "\n".into()],
        ];
        let drawn = draw_plain(&header, &rows, &style(None)).expect("plain ASCII draws");
        assert_eq!(drawn, comfy(&header, &rows, &style(None)));
        assert!(drawn
            .contains("│ 0002    ┆            ┆ pending │\n│         ┆            ┆ (empty) │"));
    }

    #[test]
    fn leaves_to_comfy_table_what_it_cannot_draw() {
        let header = ["name"];
        let row = |text: &str| vec![vec![text.to_string()]];
        assert!(draw_plain(&header, &row("tab\there"), &style(None)).is_none());
        assert!(draw_plain(&header, &row("naïve"), &style(None)).is_none());
        // "│ " + 20 + " │" is 24 columns: wider than 23, so comfy-table wraps it.
        let wide = "x".repeat(20);
        assert!(draw_plain(&header, &row(&wide), &style(Some(23))).is_none());
        assert!(draw_plain(&header, &row(&wide), &style(Some(24))).is_some());
        let colour = Style {
            color: true,
            ..style(None)
        };
        assert!(draw_plain(&header, &row("x"), &colour).is_none());
    }

    proptest! {
        #[test]
        fn draws_byte_for_byte_what_comfy_table_draws(
            header in prop::collection::vec("[ -~]{0,12}", 1..6),
            cells in prop::collection::vec(prop::collection::vec("[ -~\n]{0,16}", 6), 0..8),
            width in prop::option::of(10u16..120),
        ) {
            let header: Vec<&str> = header.iter().map(String::as_str).collect();
            let rows: Vec<Vec<String>> = cells
                .into_iter()
                .map(|mut r| { r.truncate(header.len()); r })
                .collect();
            if let Some(drawn) = draw_plain(&header, &rows, &style(width)) {
                prop_assert_eq!(drawn, comfy(&header, &rows, &style(width)));
            }
        }
    }
}
