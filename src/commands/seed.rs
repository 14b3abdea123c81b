//! `seed base|test`: load a seed set idempotently in one transaction, under the migration lock,
//! only on a database at head. `seed status`: per seed file, whether it is loaded and current.

use std::collections::HashMap;

use serde::Serialize;
use tokio_postgres::{Client, Transaction};

use super::{count, Context};
use crate::cli::{SeedArgs, SeedClearArgs};
use crate::db::seeds::load::{self, Counts, Failure, SequenceMove};
use crate::db::seeds::{catalog, runs};
use crate::db::{quote_ident, sqlstate, state};
use crate::engine::{self, set_local};
use crate::error::{file_problems, Error};
use crate::migrations::plan::{plan_up, reconcile};
use crate::migrations::{Migration, Section};
use crate::seeds::prepare::{prepare, Batch};
use crate::seeds::{self, Body, SeedFile, SeedSet};

/// What `seed base` or `seed test` did, or with `--dry-run` would do.
#[derive(Debug, Serialize)]
pub struct SeedReport {
    pub target: String,
    pub set: SeedSet,
    pub dry_run: bool,
    /// Per table, in the order first loaded, over all files.
    pub tables: Vec<TableReport>,
    pub files: Vec<FileReport>,
    pub totals: Counts,
    /// Sequences moved past explicit ids loaded into identity or serial columns.
    pub sequences: Vec<SequenceMove>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub table: String,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Serialize)]
pub struct FileReport {
    pub seed_set: SeedSet,
    pub file: String,
    pub kind: FileKind,
    pub checksum: String,
    #[serde(flatten)]
    pub counts: Counts,
    pub tables: Vec<TableReport>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// Rows, counted.
    Toml,
    /// Rows of one table, counted.
    Csv,
    /// Run as it is, not counted.
    Sql,
}

/// The files of the sets `set` loads (base, then test), in order.
fn set_paths(ctx: &Context, set: SeedSet) -> Result<Vec<(SeedSet, std::path::PathBuf)>, Error> {
    let dir = ctx.project.seeds_dir();
    let mut paths = Vec::new();
    for &s in set.with_prerequisites() {
        let Some(found) = seeds::list_set(&dir, s)? else {
            return Err(Error::input(format!(
                "no seed directory {}; seed files live in <seeds>/{}/ (paths.seeds in \
                 migrate.toml, default `seeds`)",
                dir.join(s.as_str()).display(),
                s.as_str()
            )));
        };
        paths.extend(found.into_iter().map(|p| (s, p)));
    }
    Ok(paths)
}

/// Refuses (exit 1) unless every migration file is applied, unchanged and clean.
async fn require_head(migrations: &[Migration], client: &Client) -> anyhow::Result<()> {
    let applied = state::applied(client).await?;
    let entries = reconcile(migrations, &applied);
    let plan = plan_up(&entries, None, false)
        .map_err(|refusal| Error::refused(format!("refusing to seed:\n{refusal}")))?;
    if plan.migrations.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = plan.migrations.iter().map(|m| m.path.as_str()).collect();
    Err(Error::refused(format!(
        "refusing to seed: the database is not at head; {} migration(s) pending ({}). \
         Run `migrate up` first",
        names.len(),
        names.join(", ")
    ))
    .into())
}

pub async fn load(ctx: &Context, set: SeedSet, args: &SeedArgs) -> anyhow::Result<SeedReport> {
    let migrations = ctx.migrations()?;
    let paths = set_paths(ctx, set)?;
    let (mut client, target) = ctx.connect().await?;
    if set == SeedSet::Test && !args.dry_run {
        ctx.guard_destructive(&target, "seed test")?;
    }
    if !args.dry_run {
        ctx.lock(&client, &target, "seed").await?;
    }
    crate::db::session::before_any_migration(require_head(&migrations, &client).await)?;
    // A file byte-identical to its last load, whose tables nothing has written since, would
    // load as all unchanged: it is not parsed (parsing is most of a large file's load).
    let unchanged = crate::db::session::before_any_migration(runs::unchanged(&*client).await)?;
    let mut files = seeds::read_all(&paths, &ctx.project.root, &unchanged)?;
    let shapes = catalog::tables(&*client, &table_names(&files)).await?;
    let batches = prepare(&mut files, &shapes).map_err(|problems| file_problems(&problems))?;

    let mut report = SeedReport {
        target: target.redacted(),
        set,
        dry_run: args.dry_run,
        tables: Vec::new(),
        files: Vec::new(),
        totals: Counts::default(),
        sequences: Vec::new(),
    };
    if !args.dry_run {
        let action = format!(
            "Load the {} seed set ({})",
            set.as_str(),
            count(files.len(), "file")
        );
        ctx.confirm_protected(&target, &action)?;
        // Only now: a set refused for bad input or left unconfirmed creates nothing.
        state::ensure(&client).await?;
        crate::db::session::before_any_migration(runs::ensure(&*client).await)?;
    }
    let tx = client.transaction().await?;
    set_local(&tx, &target.settings()).await?;
    let finish = engine::reporter::start(ctx.progress.as_ref(), files.len() as u64, "seed");
    let loaded = load_files(ctx, &tx, &files, &batches).await;
    drop(finish);
    for file_report in loaded? {
        for t in &file_report.tables {
            add(&mut report.tables, &t.table, t.counts);
        }
        report.totals.add(file_report.counts);
        report.files.push(file_report);
    }
    let all: Vec<&Batch> = batches.iter().flatten().collect();
    report.sequences = load::follow_sequences(&tx, &all, args.dry_run).await?;
    if !args.dry_run {
        record_runs(&tx, &files, &report.files).await?;
    }
    if args.dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(report)
}

/// Runs every file in `tx` (a file unchanged since its last load only reports its rows
/// unchanged). Stops at the first failure; the caller's transaction then rolls back.
async fn load_files(
    ctx: &Context,
    tx: &Transaction<'_>,
    files: &[SeedFile],
    batches: &[Vec<Batch>],
) -> anyhow::Result<Vec<FileReport>> {
    let mut reports = Vec::with_capacity(files.len());
    for (file, batches) in files.iter().zip(batches) {
        ctx.progress.migration(&file.path);
        let (kind, tables) = match &file.body {
            Body::Sql(sql) => {
                tx.batch_execute(sql)
                    .await
                    .map_err(|e| sql_failure(file, sql, &e))?;
                (FileKind::Sql, Vec::new())
            }
            Body::Unchanged(tables) => {
                let tables = tables
                    .iter()
                    .map(|(table, rows)| TableReport {
                        table: table.clone(),
                        counts: Counts {
                            unchanged: *rows,
                            ..Counts::default()
                        },
                    })
                    .collect();
                (file_kind(file), tables)
            }
            Body::Rows(_) | Body::Csv(_) => {
                let mut tables: Vec<TableReport> = Vec::new();
                for batch in batches {
                    add(
                        &mut tables,
                        &batch.table.qualified(),
                        load_batch(tx, file, batch).await?,
                    );
                }
                (file_kind(file), tables)
            }
        };
        let mut counts = Counts::default();
        tables.iter().for_each(|t| counts.add(t.counts));
        reports.push(FileReport {
            seed_set: file.set,
            file: file.path.clone(),
            kind,
            checksum: file.checksum.clone(),
            counts,
            tables,
        });
    }
    Ok(reports)
}

/// Records every file of a load in `seed_runs`, with the tables it filled and their
/// fingerprint as the load leaves them (what lets the next load skip it if nothing changed).
async fn record_runs(
    tx: &Transaction<'_>,
    files: &[SeedFile],
    reports: &[FileReport],
) -> anyhow::Result<()> {
    let mut cache = HashMap::new();
    for (file, report) in files.iter().zip(reports) {
        if let Body::Sql(sql) = &file.body {
            runs::record(tx, file, report.counts, &runs::names_in_sql(sql), &[], None).await?;
            continue;
        }
        let relations: Vec<String> = report
            .tables
            .iter()
            .map(|t| match t.table.split_once('.') {
                Some((schema, table)) => format!("{}.{}", quote_ident(schema), quote_ident(table)),
                None => quote_ident(&t.table),
            })
            .collect();
        let rows: Vec<i64> = report
            .tables
            .iter()
            .map(|t| t.counts.inserted + t.counts.updated + t.counts.unchanged)
            .collect();
        let fingerprint = runs::fingerprint(tx, &relations, &mut cache).await?;
        runs::record(
            tx,
            file,
            report.counts,
            &relations,
            &rows,
            Some(&fingerprint),
        )
        .await?;
    }
    Ok(())
}

/// Upserts one batch (see `load::upsert_in_savepoint`); a failure names the file and row.
async fn load_batch(
    tx: &Transaction<'_>,
    file: &SeedFile,
    batch: &Batch,
) -> anyhow::Result<Counts> {
    match load::upsert_in_savepoint(tx, batch).await? {
        Ok(counts) => Ok(counts),
        Err(e) => Err(batch_failure(file, batch, e.failure, e.rls).into()),
    }
}

fn add(tables: &mut Vec<TableReport>, table: &str, counts: Counts) {
    match tables.iter_mut().find(|t| t.table == table) {
        Some(t) => t.counts.add(counts),
        None => tables.push(TableReport {
            table: table.to_string(),
            counts,
        }),
    }
}

const ROLLED_BACK: &str = "the whole seed set was rolled back; nothing was written";

fn batch_failure(file: &SeedFile, batch: &Batch, failure: Failure, rls: bool) -> Error {
    let table = batch.table.qualified();
    let (location, row) = match failure.row {
        Some((index, line)) => (
            format!("{}:{line}", file.path),
            format!("{table} row {index}"),
        ),
        None => (file.path.clone(), table.clone()),
    };
    let column = failure
        .column
        .map(|c| format!(", column `{c}`"))
        .unwrap_or_default();
    let hint = if rls {
        format!(
            "\nrow-level security applies to the loading role on {table} (it is not the owner \
             and has no BYPASSRLS, or the table has FORCE ROW LEVEL SECURITY), so the rows \
             went through its policies; seed as a role that bypasses them"
        )
    } else {
        String::new()
    };
    let message = format!(
        "{location}: {row}{column}: {}{hint}\n{ROLLED_BACK}",
        failure.message
    );
    if failure.bad_input {
        Error::input(message)
    } else {
        Error::refused(message)
    }
}

/// A `.sql` seed file failed: its file and line, PostgreSQL's error. Bad SQL or data in a
/// seed file is an input error (exit 2); anything else is a failure (exit 1).
fn sql_failure(file: &SeedFile, sql: &str, e: &tokio_postgres::Error) -> Error {
    let section = Section {
        sql: sql.to_string(),
        first_line: 1,
    };
    let line = e.as_db_error().and_then(|db| match db.position() {
        Some(tokio_postgres::error::ErrorPosition::Original(p)) => {
            Some(section.line_of_position(*p as usize))
        }
        _ => None,
    });
    let location = match line {
        Some(line) => format!("{}:{line}", file.path),
        None => file.path.clone(),
    };
    let message = format!("{location}: {}\n{ROLLED_BACK}", crate::db::chain(e));
    let input = e
        .code()
        .is_some_and(|c| sqlstate::is_bad_data(c) || sqlstate::is_syntax_or_access(c));
    if input {
        Error::input(message)
    } else {
        Error::refused(message)
    }
}

/// `seed status`: every seed file of base and test, against its latest load.
#[derive(Debug, Serialize)]
pub struct SeedStatusReport {
    pub target: String,
    pub files: Vec<SeedStatusRow>,
}

#[derive(Debug, Serialize)]
pub struct SeedStatusRow {
    pub seed_set: SeedSet,
    /// The file name, as recorded in `_migrate.seed_runs`.
    pub file: String,
    pub state: SeedState,
    pub loaded_at: Option<String>,
    pub loaded_by: Option<String>,
    /// The checksum of the file on disk.
    pub checksum: Option<String>,
    /// The checksum it had when last loaded.
    pub loaded_checksum: Option<String>,
    /// What its last load did.
    pub counts: Option<Counts>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[serde(rename_all = "snake_case")]
pub enum SeedState {
    #[strum(serialize = "loaded")]
    Loaded,
    #[strum(serialize = "changed since load")]
    ChangedSinceLoad,
    #[strum(serialize = "never loaded")]
    NeverLoaded,
    /// Its rows were removed by `seed clear`.
    #[strum(serialize = "not loaded (cleared)")]
    Cleared,
    /// Loaded before a table it fills was dropped and recreated (`down`, then `up`): its
    /// rows are gone with the old table.
    #[strum(serialize = "not loaded (tables recreated since)")]
    TablesRecreated,
    /// Loaded once, but the file is gone.
    #[strum(serialize = "file missing")]
    Missing,
}

impl SeedState {
    /// How the human table says it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

pub async fn status(ctx: &Context) -> anyhow::Result<SeedStatusReport> {
    let dir = ctx.project.seeds_dir();
    let mut files = Vec::new();
    for set in [SeedSet::Base, SeedSet::Test] {
        files.extend(seeds::checksums(&dir, set)?.into_iter().map(|f| (set, f)));
    }
    let (client, target) = ctx.connect().await?;
    let mut latest: HashMap<(String, String), runs::SeedRun> = runs::latest(&*client)
        .await?
        .into_iter()
        .map(|r| ((r.seed_set.clone(), r.file.clone()), r))
        .collect();
    let mut rows: Vec<SeedStatusRow> = files
        .into_iter()
        .map(|(set, (name, checksum))| {
            let run = latest.remove(&(set.as_str().to_string(), name.clone()));
            let state = match &run {
                None => SeedState::NeverLoaded,
                Some(r) if r.cleared => SeedState::Cleared,
                Some(r) if r.tables_recreated => SeedState::TablesRecreated,
                Some(r) if r.checksum == checksum => SeedState::Loaded,
                Some(_) => SeedState::ChangedSinceLoad,
            };
            SeedStatusRow {
                seed_set: set,
                file: name,
                state,
                loaded_at: run.as_ref().map(|r| r.ran_at.clone()),
                loaded_by: run.as_ref().map(|r| r.ran_by.clone()),
                checksum: Some(checksum),
                loaded_checksum: run.as_ref().map(|r| r.checksum.clone()),
                counts: run.map(|r| r.counts),
            }
        })
        .collect();
    let mut gone: Vec<runs::SeedRun> = latest.into_values().collect();
    gone.sort_by(|a, b| (&a.seed_set, &a.file).cmp(&(&b.seed_set, &b.file)));
    for run in gone {
        let seed_set = match run.seed_set.as_str() {
            "test" => SeedSet::Test,
            _ => SeedSet::Base,
        };
        rows.push(SeedStatusRow {
            seed_set,
            file: run.file,
            state: SeedState::Missing,
            loaded_at: Some(run.ran_at),
            loaded_by: Some(run.ran_by),
            checksum: None,
            loaded_checksum: Some(run.checksum),
            counts: Some(run.counts),
        });
    }
    rows.sort_by(|a, b| (a.seed_set, &a.file).cmp(&(b.seed_set, &b.file)));
    Ok(SeedStatusReport {
        target: target.redacted(),
        files: rows,
    })
}

/// What `seed clear` removed, or with `--dry-run` would remove.
#[derive(Debug, Serialize)]
pub struct ClearReport {
    pub target: String,
    /// The sets cleared, in the order cleared.
    pub sets: Vec<SeedSet>,
    pub dry_run: bool,
    /// Per table, children before parents.
    pub tables: Vec<ClearedTable>,
    pub files: Vec<ClearedFile>,
    /// Rows the seed files define that were removed.
    pub deleted: i64,
    /// Rows that went with them through `ON DELETE CASCADE` (or a trigger).
    pub cascaded: i64,
}

#[derive(Debug, Serialize)]
pub struct ClearedTable {
    pub table: String,
    pub deleted: i64,
    pub cascaded: i64,
}

#[derive(Debug, Serialize)]
pub struct ClearedFile {
    pub seed_set: SeedSet,
    pub file: String,
    pub kind: FileKind,
    pub deleted: i64,
}

/// `seed clear [base|test]`: deletes, by primary key, exactly the rows the sets' files define
/// (the files on disk), newest file first and within a file the last table first, so children
/// go before parents; in one transaction, under the migration lock. `.sql` files are not
/// undone (they are recorded as cleared, so the next load runs them again).
pub async fn clear(ctx: &Context, args: &SeedClearArgs) -> anyhow::Result<ClearReport> {
    let sets: Vec<SeedSet> = match args.set {
        Some(name) => vec![SeedSet::from(name)],
        None => vec![SeedSet::Base, SeedSet::Test],
    };
    let migrations = ctx.migrations()?;
    let dir = ctx.project.seeds_dir();
    let mut paths = Vec::new();
    for &s in &sets {
        match seeds::list_set(&dir, s)? {
            Some(found) => paths.extend(found.into_iter().map(|p| (s, p))),
            None if args.set.is_none() => {}
            None => {
                return Err(Error::input(format!(
                    "no seed directory {}",
                    dir.join(s.as_str()).display()
                ))
                .into())
            }
        }
    }
    let mut files = seeds::read_all(&paths, &ctx.project.root, &Default::default())?;
    let (mut client, target) = ctx.connect().await?;
    if !args.dry_run {
        ctx.guard_destructive(&target, "seed clear")?;
        ctx.lock(&client, &target, "seed").await?;
    }
    require_head(&migrations, &client).await?;
    let shapes = catalog::tables(&*client, &table_names(&files)).await?;
    let batches = prepare(&mut files, &shapes).map_err(|problems| file_problems(&problems))?;
    if !args.dry_run {
        let action = format!("Delete the rows of {}", count(files.len(), "seed file"));
        ctx.confirm_protected(&target, &action)?;
        state::ensure(&client).await?;
        crate::db::session::before_any_migration(runs::ensure(&*client).await)?;
    }
    let tx = client.transaction().await?;
    set_local(&tx, &target.settings()).await?;
    let mut tables: Vec<ClearedTable> = Vec::new();
    let mut cleared: Vec<ClearedFile> = Vec::new();
    for (file, batches) in files.iter().zip(&batches).rev() {
        let mut deleted = 0;
        for batch in batches.iter().rev() {
            let n = load::delete(&tx, batch)
                .await
                .map_err(|e| clear_failure(file, batch, &e))? as i64;
            deleted += n;
            let table = batch.table.qualified();
            match tables.iter_mut().find(|t| t.table == table) {
                Some(t) => t.deleted += n,
                None => tables.push(ClearedTable {
                    table,
                    deleted: n,
                    cascaded: 0,
                }),
            }
        }
        if !args.dry_run {
            runs::record_clear(&tx, file, deleted).await?;
        }
        cleared.push(ClearedFile {
            seed_set: file.set,
            file: file.path.clone(),
            kind: file_kind(file),
            deleted,
        });
    }
    // What the database removed besides (ON DELETE CASCADE, triggers), from its own counts.
    for (table, all) in load::deleted_per_table(&tx).await? {
        if table == "_migrate.seed_runs" {
            continue;
        }
        match tables.iter_mut().find(|t| t.table == table) {
            Some(t) => t.cascaded = all - t.deleted,
            None => tables.push(ClearedTable {
                table,
                deleted: 0,
                cascaded: all,
            }),
        }
    }
    if !args.dry_run {
        // Rows of the other set's files went with them (ON DELETE CASCADE): those files are
        // not loaded any more either.
        let set_names: Vec<&str> = sets.iter().map(|s| s.as_str()).collect();
        let cascaded: Vec<String> = tables
            .iter()
            .filter(|t| t.cascaded > 0)
            .map(|t| t.table.clone())
            .collect();
        runs::record_cascaded(&tx, &set_names, &cascaded).await?;
    }
    if args.dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
    }
    Ok(ClearReport {
        target: target.redacted(),
        sets: sets.into_iter().rev().collect(),
        dry_run: args.dry_run,
        deleted: tables.iter().map(|t| t.deleted).sum(),
        cascaded: tables.iter().map(|t| t.cascaded).sum(),
        tables,
        files: cleared,
    })
}

fn file_kind(file: &SeedFile) -> FileKind {
    match &file.body {
        Body::Sql(_) => FileKind::Sql,
        _ if file.name.ends_with(".csv") => FileKind::Csv,
        _ => FileKind::Toml,
    }
}

/// The tables the files' rows go to, each once.
fn table_names(files: &[SeedFile]) -> Vec<(String, String)> {
    let mut names: Vec<(String, String)> = Vec::new();
    for file in files {
        let mut add = |name: (String, String)| {
            if !names.contains(&name) {
                names.push(name);
            }
        };
        match &file.body {
            Body::Rows(tables) => {
                for t in tables {
                    add((t.schema.clone(), t.table.clone()));
                }
            }
            Body::Csv(source) => add((source.schema.clone(), source.table.clone())),
            Body::Sql(_) | Body::Unchanged(_) => {}
        }
    }
    names
}

/// A delete refused: most often rows no seed file defines still refer to seed rows.
fn clear_failure(file: &SeedFile, batch: &Batch, e: &tokio_postgres::Error) -> Error {
    let hint = if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) {
        "\nrows that no seed file of this set defines refer to these rows: remove them first \
         (clear `test` before `base`)"
    } else {
        ""
    };
    Error::refused(format!(
        "{}: {}: {}{hint}\nthe clear was rolled back; nothing was deleted",
        file.path,
        batch.table.qualified(),
        crate::db::chain(e)
    ))
}
