//! Drift: every difference between `schema.lock` and the live catalog, seen through the same
//! lock model, for a database at the lock's head.

use std::collections::BTreeMap;

use super::rules::sql_name;
use super::{Finding, Level, Rule};
use crate::lockfile::{FunctionLock, PolicyLock, SchemaLock, TableLock};
use crate::migrations::short;

const MISSING: &str = "re-create it as its migration does, and find out who dropped it";
const EXTRA: &str =
    "drop it, or create it in a new migration and run `migrate lock` (changes go through migrations)";
const DIFFERENT: &str =
    "make it match its migration, or make the change in a new migration and run `migrate lock`";

/// Differences between what the lock says (`locked`) and what the database has (`live`).
pub fn drift(
    locked: &BTreeMap<String, SchemaLock>,
    live: &BTreeMap<String, SchemaLock>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    each(locked, live, |name, lock, db| {
        if let Some((lock, db)) = both(name, None, name, "schema", lock, db, &mut out) {
            schema(name, lock, db, &mut out);
        }
    });
    out
}

enum Side {
    Missing,
    Extra,
    Different(String),
}

fn found(schema: &str, table: Option<&str>, object: &str, kind: &str, side: Side) -> Finding {
    // Names as SQL would write them, so `policy "Users can view their own data"` reads as one.
    let name = if kind == "function" {
        object.to_string()
    } else {
        sql_name(object)
    };
    let (rule, message, remedy) = match side {
        Side::Missing => (
            if kind == "index" {
                Rule::IndexMissing
            } else {
                Rule::Drift
            },
            format!("{kind} {name} is in schema.lock but not in the database"),
            MISSING,
        ),
        Side::Extra => (
            Rule::Drift,
            format!("{kind} {name} is in the database but not in schema.lock"),
            EXTRA,
        ),
        Side::Different(what) => (
            Rule::Drift,
            format!("{kind} {name} differs: {what}"),
            DIFFERENT,
        ),
    };
    Finding {
        rule,
        level: Level::Error,
        schema: Some(schema.to_string()),
        table: table.map(String::from),
        object: object.to_string(),
        message,
        remedy: remedy.to_string(),
    }
}

/// Calls `f` for every key of either map with both sides' values.
fn each<'a, V>(
    locked: &'a BTreeMap<String, V>,
    live: &'a BTreeMap<String, V>,
    mut f: impl FnMut(&'a str, Option<&'a V>, Option<&'a V>),
) {
    let mut keys: Vec<&String> = locked.keys().chain(live.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        f(key, locked.get(key), live.get(key));
    }
}

/// Reports an object that only one side has; both sides' values when both have it.
fn both<'a, V>(
    schema: &str,
    table: Option<&str>,
    name: &str,
    kind: &str,
    lock: Option<&'a V>,
    db: Option<&'a V>,
    out: &mut Vec<Finding>,
) -> Option<(&'a V, &'a V)> {
    match (lock, db) {
        (Some(lock), Some(db)) => return Some((lock, db)),
        (Some(_), None) => out.push(found(schema, table, name, kind, Side::Missing)),
        (None, Some(_)) => out.push(found(schema, table, name, kind, Side::Extra)),
        (None, None) => {}
    }
    None
}

/// Compares two maps of objects of one kind; `differ` describes how two values differ.
fn compare<V: PartialEq>(
    schema: &str,
    table: Option<&str>,
    kind: &str,
    locked: &BTreeMap<String, V>,
    live: &BTreeMap<String, V>,
    differ: impl Fn(&V, &V) -> String,
    out: &mut Vec<Finding>,
) {
    each(locked, live, |name, lock, db| {
        if let Some((lock, db)) = both(schema, table, name, kind, lock, db, out) {
            if lock != db {
                let what = Side::Different(differ(lock, db));
                out.push(found(schema, table, name, kind, what));
            }
        }
    });
}

/// `lock `a`, database `b``, for one-line values.
fn text(lock: &String, db: &String) -> String {
    format!("lock `{lock}`, database `{db}`")
}

/// The fields that differ, each as `field: lock `a`, database `b``.
fn fields(pairs: &[(&str, String, String)]) -> String {
    pairs
        .iter()
        .filter(|(_, a, b)| a != b)
        .map(|(name, a, b)| format!("{name}: lock `{a}`, database `{b}`"))
        .collect::<Vec<_>>()
        .join("; ")
}

fn schema(name: &str, lock: &SchemaLock, db: &SchemaLock, out: &mut Vec<Finding>) {
    each(&lock.tables, &db.tables, |table, l, d| {
        if let Some((l, d)) = both(name, Some(table), table, "table", l, d, out) {
            self::table(name, table, l, d, out);
        }
    });
    compare(
        name,
        None,
        "view",
        &lock.views,
        &db.views,
        |_, _| "its definition changed".into(),
        out,
    );
    // A materialized view differs by its definition; its indexes are compared one by one.
    let kind = "materialized view";
    each(
        &lock.materialized_views,
        &db.materialized_views,
        |view, l, d| {
            if let Some((l, d)) = both(name, None, view, kind, l, d, out) {
                if l.definition != d.definition {
                    let what = Side::Different("its definition changed".into());
                    out.push(found(name, None, view, kind, what));
                }
                compare(name, Some(view), "index", &l.indexes, &d.indexes, text, out);
            }
        },
    );
    compare(
        name,
        None,
        "function",
        &lock.functions,
        &db.functions,
        function,
        out,
    );
}

fn table(schema: &str, name: &str, lock: &TableLock, db: &TableLock, out: &mut Vec<Finding>) {
    let t = Some(name);
    let flags = fields(&[
        (
            "rls_enabled",
            lock.rls_enabled.to_string(),
            db.rls_enabled.to_string(),
        ),
        (
            "rls_forced",
            lock.rls_forced.to_string(),
            db.rls_forced.to_string(),
        ),
    ]);
    if !flags.is_empty() {
        out.push(found(schema, t, name, "table", Side::Different(flags)));
    }
    compare(schema, t, "column", &lock.columns, &db.columns, text, out);
    compare(
        schema,
        t,
        "constraint",
        &lock.constraints,
        &db.constraints,
        text,
        out,
    );
    compare(schema, t, "index", &lock.indexes, &db.indexes, text, out);
    compare(
        schema,
        t,
        "policy",
        &lock.policies,
        &db.policies,
        policy,
        out,
    );
    compare(
        schema,
        t,
        "trigger",
        &lock.triggers,
        &db.triggers,
        text,
        out,
    );
}

fn policy(lock: &PolicyLock, db: &PolicyLock) -> String {
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "(none)".into());
    fields(&[
        ("command", lock.command.clone(), db.command.clone()),
        (
            "permissive",
            lock.permissive.to_string(),
            db.permissive.to_string(),
        ),
        ("roles", lock.roles.join(", "), db.roles.join(", ")),
        ("USING", opt(&lock.using), opt(&db.using)),
        ("WITH CHECK", opt(&lock.with_check), opt(&db.with_check)),
    ])
}

fn function(lock: &FunctionLock, db: &FunctionLock) -> String {
    let body = if lock.body_sha256 == db.body_sha256 {
        String::new()
    } else {
        format!(
            "body changed (sha256 lock {}, database {})",
            short(&lock.body_sha256),
            short(&db.body_sha256)
        )
    };
    let others = fields(&[
        (
            "returns",
            lock.returns.clone().unwrap_or_default(),
            db.returns.clone().unwrap_or_default(),
        ),
        ("language", lock.language.clone(), db.language.clone()),
        (
            "security_definer",
            lock.security_definer.to_string(),
            db.security_definer.to_string(),
        ),
        ("volatility", lock.volatility.clone(), db.volatility.clone()),
        ("config", lock.config.join(", "), db.config.join(", ")),
    ]);
    [body, others]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_with(columns: &[(&str, &str)]) -> TableLock {
        TableLock {
            rls_enabled: true,
            columns: columns
                .iter()
                .map(|(n, d)| (n.to_string(), d.to_string()))
                .collect(),
            ..TableLock::default()
        }
    }

    fn catalog(table: TableLock) -> BTreeMap<String, SchemaLock> {
        let mut schema = SchemaLock::default();
        schema.tables.insert("users".into(), table);
        BTreeMap::from([("coach".to_string(), schema)])
    }

    #[test]
    fn same_catalog_no_drift() {
        let c = catalog(table_with(&[("id", "uuid NOT NULL")]));
        assert!(drift(&c, &c).is_empty());
    }

    #[test]
    fn a_materialized_view_differs_by_its_definition_not_its_indexes() {
        use crate::lockfile::MaterializedViewLock;
        let view = |definition: &str, indexes: &[&str]| {
            let mut schema = SchemaLock::default();
            schema.materialized_views.insert(
                "daily".into(),
                MaterializedViewLock {
                    definition: definition.into(),
                    indexes: indexes
                        .iter()
                        .map(|i| (i.to_string(), format!("CREATE INDEX {i} ...")))
                        .collect(),
                },
            );
            BTreeMap::from([("signify".to_string(), schema)])
        };
        let found: Vec<(Rule, String)> =
            drift(&view("SELECT 1", &["a"]), &view("SELECT 1", &["b"]))
                .into_iter()
                .map(|f| (f.rule, f.message))
                .collect();
        assert_eq!(
            found,
            vec![
                (
                    Rule::IndexMissing,
                    "index a is in schema.lock but not in the database".into()
                ),
                (
                    Rule::Drift,
                    "index b is in the database but not in schema.lock".into()
                ),
            ]
        );
        let changed = drift(&view("SELECT 1", &["a"]), &view("SELECT 2", &["a"]));
        assert_eq!(changed.len(), 1);
        assert_eq!(
            changed[0].message,
            "materialized view daily differs: its definition changed"
        );
    }

    #[test]
    fn names_read_as_sql_in_every_message() {
        let policy = |using: &str| {
            let mut table = table_with(&[]);
            table.policies.insert(
                "Own rows".into(),
                PolicyLock {
                    command: "SELECT".into(),
                    permissive: true,
                    roles: vec!["authenticated".into()],
                    using: Some(using.into()),
                    with_check: None,
                },
            );
            catalog(table)
        };
        let found = drift(&policy("(a = b)"), &policy("true"));
        assert_eq!(
            found[0].message,
            "policy \"Own rows\" differs: USING: lock `(a = b)`, database `true`"
        );
    }

    #[test]
    fn missing_extra_and_different() {
        let mut lock_table = table_with(&[("id", "uuid NOT NULL"), ("name", "text")]);
        lock_table
            .indexes
            .insert("users_name_idx".into(), "CREATE INDEX ...".into());
        let lock = catalog(lock_table);
        let mut live_table = table_with(&[("id", "text NOT NULL"), ("extra", "int")]);
        live_table.rls_enabled = false;
        let live = catalog(live_table);
        let found: Vec<(Rule, String, String)> = drift(&lock, &live)
            .into_iter()
            .map(|f| (f.rule, f.object, f.message))
            .collect();
        assert_eq!(
            found,
            vec![
                (
                    Rule::Drift,
                    "users".into(),
                    "table users differs: rls_enabled: lock `true`, database `false`".into()
                ),
                (
                    Rule::Drift,
                    "extra".into(),
                    "column extra is in the database but not in schema.lock".into()
                ),
                (
                    Rule::Drift,
                    "id".into(),
                    "column id differs: lock `uuid NOT NULL`, database `text NOT NULL`".into()
                ),
                (
                    Rule::Drift,
                    "name".into(),
                    "column name is in schema.lock but not in the database".into()
                ),
                (
                    Rule::IndexMissing,
                    "users_name_idx".into(),
                    "index users_name_idx is in schema.lock but not in the database".into()
                ),
            ]
        );
    }
}
