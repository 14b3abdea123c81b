//! Whether one database's history may follow another's (staging → production): production's
//! applied migrations must be a prefix of staging's with equal checksums, and the files to
//! apply must be exactly what staging ran. Pure.

use std::collections::BTreeMap;

use serde::Serialize;

use super::plan::{head, AppliedMigration};
use super::{short, Migration};

/// Why a promotion may not proceed. Stable names: CI pipelines match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Obstacle {
    /// Production applied a version staging has not, below staging's head, or in another order.
    Diverged,
    /// A version both applied, with different checksums.
    ChecksumChanged,
    /// A migration on either side failed part way.
    Dirty,
    /// Production applied versions beyond staging's head.
    ProductionAhead,
    /// A migration to apply has no file here.
    FileMissing,
    /// A migration to apply has a file whose checksum differs from staging's record.
    FileChanged,
    /// `verify` found drift or an error on one side.
    Drift,
    /// `lint` found an unacknowledged finding in a migration to apply.
    Lint,
}

/// One obstacle, on one version when it concerns one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    pub kind: Obstacle,
    pub version: Option<i64>,
    pub message: String,
}

impl Reason {
    pub fn new(kind: Obstacle, version: Option<i64>, message: String) -> Reason {
        Reason {
            kind,
            version,
            message,
        }
    }
}

/// The outcome of comparing the two histories and the files.
#[derive(Debug)]
pub struct Comparison<'r, 'f> {
    /// Staging's records that production lacks, in version order.
    pub missing: Vec<&'r AppliedMigration>,
    /// The files to apply for `missing`, when every one is present and unchanged.
    pub files: Vec<&'f Migration>,
    pub reasons: Vec<Reason>,
}

/// Compares `from` (staging) with `to` (production); `names` are the environments' names
/// for the messages.
pub fn compare<'r, 'f>(
    names: (&str, &str),
    from: &'r [AppliedMigration],
    to: &'r [AppliedMigration],
    files: &'f [Migration],
) -> Comparison<'r, 'f> {
    let mut reasons = Vec::new();
    dirty(names, from, to, &mut reasons);
    let staged: BTreeMap<i64, &AppliedMigration> = from.iter().map(|r| (r.version, r)).collect();
    production_rows(names, &staged, head(from), to, &mut reasons);
    let applied: BTreeMap<i64, &AppliedMigration> = to.iter().map(|r| (r.version, r)).collect();
    let missing: Vec<&'r AppliedMigration> = from
        .iter()
        .filter(|r| !applied.contains_key(&r.version))
        .collect();
    skipped(names, &staged, to, &missing, &mut reasons);
    let to_apply = files_to_apply(names.0, &missing, files, &mut reasons);
    Comparison {
        missing,
        files: to_apply,
        reasons,
    }
}

/// A dirty migration on either side stops a promotion.
fn dirty(
    (from_name, to_name): (&str, &str),
    from: &[AppliedMigration],
    to: &[AppliedMigration],
    reasons: &mut Vec<Reason>,
) {
    for (side, rows) in [(from_name, from), (to_name, to)] {
        for row in rows.iter().filter(|r| r.dirty) {
            reasons.push(Reason::new(
                Obstacle::Dirty,
                Some(row.version),
                format!(
                    "{side}: {} failed part way and is marked dirty; fix it by hand, then \
                     `migrate repair {} --env {side}`",
                    label(row),
                    row.version
                ),
            ));
        }
    }
}

/// Every production row must be staging's, with staging's checksum.
fn production_rows(
    (from_name, to_name): (&str, &str),
    staged: &BTreeMap<i64, &AppliedMigration>,
    staging_head: Option<i64>,
    to: &[AppliedMigration],
    reasons: &mut Vec<Reason>,
) {
    for row in to {
        match staged.get(&row.version) {
            Some(s) if s.checksum != row.checksum => reasons.push(Reason::new(
                Obstacle::ChecksumChanged,
                Some(row.version),
                format!(
                    "{} has checksum {} in {to_name} but {} in {from_name}: the file was edited \
                     between the two runs",
                    label(row),
                    short(&row.checksum),
                    short(&s.checksum)
                ),
            )),
            Some(_) => {}
            None if staging_head.is_none_or(|head| row.version > head) => {
                reasons.push(Reason::new(
                    Obstacle::ProductionAhead,
                    Some(row.version),
                    format!(
                        "{to_name} applied {}, beyond {from_name}'s head ({}); migrate \
                         {from_name} first",
                        label(row),
                        staging_head.map_or("none".to_string(), |h| format!("{h:04}"))
                    ),
                ))
            }
            None => reasons.push(Reason::new(
                Obstacle::Diverged,
                Some(row.version),
                format!(
                    "{to_name} applied {}, which {from_name} has not: the histories diverged",
                    label(row)
                ),
            )),
        }
    }
}

/// Prefix: every staging version below production's highest shared one must be applied in
/// production too, or production skipped it and the order differs.
fn skipped(
    (from_name, to_name): (&str, &str),
    staged: &BTreeMap<i64, &AppliedMigration>,
    to: &[AppliedMigration],
    missing: &[&AppliedMigration],
    reasons: &mut Vec<Reason>,
) {
    let shared_top = to
        .iter()
        .filter(|r| staged.contains_key(&r.version))
        .map(|r| r.version)
        .max();
    for row in missing {
        if shared_top.is_some_and(|top| row.version < top) {
            reasons.push(Reason::new(
                Obstacle::Diverged,
                Some(row.version),
                format!(
                    "{from_name} applied {} before {:04}, but {to_name} skipped it: {to_name}'s \
                     history is not a prefix of {from_name}'s",
                    label(row),
                    shared_top.unwrap_or_default()
                ),
            ));
        }
    }
}

/// The files for staging's records that production lacks, when each is here and unchanged.
fn files_to_apply<'f>(
    from_name: &str,
    missing: &[&AppliedMigration],
    files: &'f [Migration],
    reasons: &mut Vec<Reason>,
) -> Vec<&'f Migration> {
    let on_disk: BTreeMap<i64, &'f Migration> = files.iter().map(|m| (m.version, m)).collect();
    let mut to_apply = Vec::new();
    for row in missing {
        match on_disk.get(&row.version) {
            None => reasons.push(Reason::new(
                Obstacle::FileMissing,
                Some(row.version),
                format!(
                    "{from_name} applied {}, but there is no file for it here; check out the \
                     revision {from_name} was migrated from",
                    label(row)
                ),
            )),
            Some(file) if file.checksum != row.checksum => reasons.push(Reason::new(
                Obstacle::FileChanged,
                Some(row.version),
                format!(
                    "{} differs from what {from_name} applied (checksum {} recorded, {} on \
                     disk); check out the revision {from_name} was migrated from",
                    file.path,
                    short(&row.checksum),
                    short(&file.checksum)
                ),
            )),
            Some(file) => to_apply.push(*file),
        }
    }
    to_apply
}

fn label(row: &AppliedMigration) -> String {
    format!("{:04} {}", row.version, row.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::Section;

    fn row(version: i64, checksum: &str) -> AppliedMigration {
        AppliedMigration {
            version,
            name: format!("coach_t{version}"),
            checksum: checksum.to_string(),
            applied_at: String::new(),
            applied_by: String::new(),
            duration_ms: 0,
            tool_version: String::new(),
            dirty: false,
        }
    }

    fn file(version: i64, checksum: &str) -> Migration {
        Migration {
            version,
            name: format!("coach_t{version}"),
            domain: "coach".into(),
            path: format!("migrations/{version:04}_coach_t{version}.sql"),
            checksum: checksum.to_string(),
            checksum_without_bom: None,
            up: Section {
                sql: String::new(),
                first_line: 1,
            },
            down: Section {
                sql: String::new(),
                first_line: 1,
            },
            transactional: true,
        }
    }

    fn kinds(c: &Comparison) -> Vec<(Obstacle, Option<i64>)> {
        c.reasons.iter().map(|r| (r.kind, r.version)).collect()
    }

    const NAMES: (&str, &str) = ("staging", "production");

    #[test]
    fn prefix_with_files_may_proceed() {
        let staging = [row(1, "a"), row(2, "b"), row(3, "c")];
        let production = [row(1, "a")];
        let files = [file(1, "a"), file(2, "b"), file(3, "c")];
        let c = compare(NAMES, &staging, &production, &files);
        assert!(c.reasons.is_empty(), "{:?}", c.reasons);
        assert_eq!(
            c.files.iter().map(|f| f.version).collect::<Vec<_>>(),
            [2, 3]
        );
        let c = compare(NAMES, &staging, &[], &files);
        assert_eq!(c.files.len(), 3);
        let c = compare(NAMES, &staging, &staging, &files);
        assert!(c.reasons.is_empty() && c.missing.is_empty());
    }

    /// The obstacles found comparing staging `from` with production `to`.
    fn obstacles(
        from: &[AppliedMigration],
        to: &[AppliedMigration],
        files: &[Migration],
    ) -> Vec<(Obstacle, Option<i64>)> {
        kinds(&compare(NAMES, from, to, files))
    }

    #[test]
    fn every_obstacle_is_named() {
        let files = [file(1, "a"), file(2, "b"), file(3, "c")];
        let (a, b, c) = (row(1, "a"), row(2, "b"), row(3, "c"));
        let diverged = [(Obstacle::Diverged, Some(2))];
        // Production applied a version staging has not.
        let found = obstacles(&[a.clone(), c.clone()], &[a.clone(), b.clone()], &files);
        assert_eq!(found, diverged);
        // Production skipped one staging applied before others.
        let found = obstacles(
            &[a.clone(), b.clone(), c.clone()],
            &[a.clone(), c.clone()],
            &files,
        );
        assert_eq!(found, diverged);
        let found = obstacles(&[a.clone(), b.clone()], &[row(1, "x")], &files);
        assert_eq!(found, [(Obstacle::ChecksumChanged, Some(1))]);
        let found = obstacles(std::slice::from_ref(&a), &[a.clone(), b.clone()], &files);
        assert_eq!(found, [(Obstacle::ProductionAhead, Some(2))]);
        let mut dirty = b.clone();
        dirty.dirty = true;
        let staging = [a.clone(), dirty];
        let comparison = compare(NAMES, &staging, &[], &files);
        assert_eq!(kinds(&comparison), [(Obstacle::Dirty, Some(2))]);
        assert!(comparison.reasons[0]
            .message
            .starts_with("staging: 0002 coach_t2"));
        let staging = [a.clone(), row(2, "z")];
        let comparison = compare(NAMES, &staging, &[], &files);
        assert_eq!(kinds(&comparison), [(Obstacle::FileChanged, Some(2))]);
        assert_eq!(comparison.files.len(), 1);
        let found = obstacles(&[a.clone(), row(4, "d")], &[a], &files);
        assert_eq!(found, [(Obstacle::FileMissing, Some(4))]);
    }
}
