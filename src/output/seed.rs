//! Human renderings of `seed base|test` and `seed status`.

use comfy_table::{Attribute, Cell, Color};

use super::human::table;
use super::{Report, Style};
use crate::commands::seed::{ClearReport, FileKind, SeedReport, SeedState, SeedStatusReport};
use crate::db::seeds::load::Counts;
use crate::error::ExitStatus;
use crate::setup::SetupReport;

fn counts_cells(c: &Counts) -> Vec<Cell> {
    vec![
        Cell::new(c.inserted),
        Cell::new(c.updated),
        Cell::new(c.unchanged),
    ]
}

impl Report for SeedReport {
    fn human(&self, style: &Style) -> String {
        let mut out = format!("target: {}\n", self.target);
        if !style.verbose {
            // One row per schema, so the report fits a screen; --verbose gives every table
            // and file.
            out.push_str(&schema_summary(self, style));
        }
        if style.verbose && !self.tables.is_empty() {
            let mut t = table(style, &["table", "inserted", "updated", "unchanged"]);
            for row in &self.tables {
                let mut cells = vec![Cell::new(&row.table)];
                cells.extend(counts_cells(&row.counts));
                t.add_row(cells);
            }
            out.push_str(&format!("{t}\n"));
        }
        if style.verbose && !self.files.is_empty() {
            let mut t = table(style, &["set", "file", "inserted", "updated", "unchanged"]);
            for f in &self.files {
                let mut cells = vec![Cell::new(f.seed_set.as_str()), Cell::new(&f.file)];
                if f.kind == FileKind::Sql {
                    cells.extend(["ran (sql)", "-", "-"].map(Cell::new));
                } else {
                    cells.extend(counts_cells(&f.counts));
                }
                t.add_row(cells);
            }
            out.push_str(&format!("{t}\n"));
        }
        for m in &self.sequences {
            let verb = if self.dry_run { "would move" } else { "moved" };
            out.push_str(&format!(
                "sequence {} {verb} to {} (the largest {})\n",
                m.sequence, m.value, m.column
            ));
        }
        let c = &self.totals;
        let what = format!(
            "{} inserted, {} updated, {} unchanged from {} file(s)",
            c.inserted,
            c.updated,
            c.unchanged,
            self.files.len()
        );
        if self.dry_run {
            out.push_str(&format!(
                "dry run: seed {} would leave {what}; nothing was written\n",
                self.set.as_str()
            ));
        } else {
            out.push_str(&format!("seed {}: {what}\n", self.set.as_str()));
        }
        out
    }
}

/// Counts per schema (summed over its tables), and how to see more.
fn schema_summary(report: &SeedReport, style: &Style) -> String {
    let mut schemas: Vec<(&str, usize, Counts)> = Vec::new();
    for row in &report.tables {
        let schema = row.table.split_once('.').map_or("", |(s, _)| s);
        match schemas.iter_mut().find(|(s, _, _)| *s == schema) {
            Some((_, tables, counts)) => {
                *tables += 1;
                counts.add(row.counts);
            }
            None => schemas.push((schema, 1, row.counts)),
        }
    }
    if schemas.is_empty() {
        return String::new();
    }
    let mut t = table(
        style,
        &["schema", "tables", "inserted", "updated", "unchanged"],
    );
    for (schema, tables, counts) in &schemas {
        let mut cells = vec![Cell::new(schema), Cell::new(tables)];
        cells.extend(counts_cells(counts));
        t.add_row(cells);
    }
    format!(
        "{t}\n(--verbose: counts per table and per file, {} tables in {} files)\n",
        report.tables.len(),
        report.files.len()
    )
}

impl Report for SeedStatusReport {
    fn human(&self, style: &Style) -> String {
        let mut out = format!("target: {}\n", self.target);
        if self.files.is_empty() {
            out.push_str("no seed files, and none loaded\n");
            return out;
        }
        let mut t = table(style, &["set", "file", "state", "loaded at", "by"]);
        for row in &self.files {
            let mut state = Cell::new(row.state.as_str());
            if style.color {
                state = match row.state {
                    SeedState::Loaded => state.fg(Color::Green),
                    SeedState::NeverLoaded | SeedState::Cleared | SeedState::TablesRecreated => {
                        state.fg(Color::Yellow)
                    }
                    SeedState::ChangedSinceLoad | SeedState::Missing => {
                        state.fg(Color::Red).add_attribute(Attribute::Bold)
                    }
                };
            }
            t.add_row(vec![
                Cell::new(row.seed_set.as_str()),
                Cell::new(&row.file),
                state,
                Cell::new(row.loaded_at.as_deref().unwrap_or("-")),
                Cell::new(row.loaded_by.as_deref().unwrap_or("-")),
            ]);
        }
        out.push_str(&format!("{t}\n"));
        let count = |s: SeedState| self.files.iter().filter(|r| r.state == s).count();
        out.push_str(&format!(
            "{} loaded, {} changed since load, {} never loaded, {} file missing",
            count(SeedState::Loaded),
            count(SeedState::ChangedSinceLoad),
            count(SeedState::NeverLoaded),
            count(SeedState::Missing)
        ));
        let not_loaded = count(SeedState::Cleared) + count(SeedState::TablesRecreated);
        if not_loaded > 0 {
            out.push_str(&format!(
                ", {not_loaded} not loaded any more (cleared or tables recreated)"
            ));
        }
        out.push('\n');
        out
    }
}

impl Report for ClearReport {
    fn human(&self, style: &Style) -> String {
        let mut out = format!("target: {}\n", self.target);
        if !self.tables.is_empty() {
            let mut t = table(style, &["table", "deleted", "cascaded"]);
            for row in &self.tables {
                t.add_row(vec![
                    Cell::new(&row.table),
                    Cell::new(row.deleted),
                    Cell::new(row.cascaded),
                ]);
            }
            out.push_str(&format!("{t}\n"));
        }
        let sets: Vec<&str> = self.sets.iter().map(|s| s.as_str()).collect();
        let what = format!(
            "{} row(s) the seed files define, {} more by ON DELETE CASCADE, from {} file(s) of {}",
            self.deleted,
            self.cascaded,
            self.files.len(),
            sets.join(" and ")
        );
        if self.dry_run {
            out.push_str(&format!(
                "dry run: seed clear would delete {what}; nothing was deleted\n"
            ));
        } else {
            out.push_str(&format!("seed clear: deleted {what}\n"));
        }
        out
    }
}

impl Report for SetupReport {
    fn human(&self, style: &Style) -> String {
        let mut out = self.up.human(style);
        if let Some(seed) = &self.seed {
            let text = seed.human(style);
            // One target line for both.
            let text = text
                .split_once('\n')
                .map_or(text.as_str(), |(_, rest)| rest);
            out.push_str(text);
        }
        out
    }

    fn status(&self) -> ExitStatus {
        self.up.status()
    }

    fn problem(&self) -> Option<String> {
        self.up.problem()
    }
}
