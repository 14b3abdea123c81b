//! Drift: every difference between `schema.lock` and the live catalog, seen through the same
//! lock model, for a database at the lock's head.

use std::collections::BTreeMap;

use super::rules::sql_name;
use super::{Finding, Level, Rule};
use crate::db::catalog::Grants;
use crate::lockfile::{FunctionLock, OutsideTriggers, PolicyLock, SchemaLock, TableLock, TypeLock};
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

/// Differences in the triggers the migrations put on tables outside the managed schemas.
pub fn outside_triggers(locked: &OutsideTriggers, live: &OutsideTriggers) -> Vec<Finding> {
    let mut out = Vec::new();
    let no_tables = BTreeMap::new();
    let no_triggers = BTreeMap::new();
    each(locked, live, |schema, lock, db| {
        let (lock, db) = (lock.unwrap_or(&no_tables), db.unwrap_or(&no_tables));
        each(lock, db, |table, lock, db| {
            let (lock, db) = (lock.unwrap_or(&no_triggers), db.unwrap_or(&no_triggers));
            compare(schema, Some(table), "trigger", lock, db, text, &mut out);
        });
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
        acknowledged: None,
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
    let on = |kind: &'static str, object: &str| {
        format!("{kind} {}.{}", sql_name(name), sql_name(object))
    };
    grants(
        &Granted {
            schema: name,
            table: None,
            object: name,
            kind: "schema",
            sql: format!("SCHEMA {}", sql_name(name)),
            column: None,
        },
        &lock.grants,
        &db.grants,
        out,
    );
    each(&lock.tables, &db.tables, |table, l, d| {
        if let Some((l, d)) = both(name, Some(table), table, "table", l, d, out) {
            self::table(name, table, l, d, out);
        }
    });
    each(&lock.views, &db.views, |view, l, d| {
        if let Some((l, d)) = both(name, None, view, "view", l, d, out) {
            if l.definition != d.definition {
                let what = Side::Different("its definition changed".into());
                out.push(found(name, None, view, "view", what));
            }
            let at = Granted::relation(name, None, view, "view", on("TABLE", view));
            grants(&at, &l.grants, &d.grants, out);
        }
    });
    each(&lock.sequences, &db.sequences, |sequence, l, d| {
        if let Some((l, d)) = both(name, None, sequence, "sequence", l, d, out) {
            let at = Granted::relation(name, None, sequence, "sequence", on("SEQUENCE", sequence));
            grants(&at, &l.grants, &d.grants, out);
        }
    });
    compare(name, None, "type", &lock.types, &db.types, type_fields, out);
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
                let at = Granted::relation(name, None, view, kind, on("TABLE", view));
                grants(&at, &l.grants, &d.grants, out);
            }
        },
    );
    // A function differs by its definition; its privileges are compared role by role.
    each(&lock.functions, &db.functions, |signature, l, d| {
        if let Some((l, d)) = both(name, None, signature, "function", l, d, out) {
            let what = function(l, d);
            if !what.is_empty() {
                out.push(found(
                    name,
                    None,
                    signature,
                    "function",
                    Side::Different(what),
                ));
            }
            let routine = signature
                .split_once('(')
                .map_or(signature.to_string(), |(n, args)| {
                    format!("{}({args}", sql_name(n))
                });
            let at = Granted {
                schema: name,
                table: None,
                object: signature,
                kind: "function",
                sql: format!("FUNCTION {}.{routine}", sql_name(name)),
                column: None,
            };
            grants(&at, &l.grants, &d.grants, out);
        }
    });
}

/// An object privileges are granted on, for drift findings about them.
struct Granted<'a> {
    schema: &'a str,
    table: Option<&'a str>,
    /// The finding's object: the table, view, sequence, column, function or schema name.
    object: &'a str,
    /// `table`, `view`, `column`, ...
    kind: &'a str,
    /// The object as GRANT names it: `TABLE coach.users`, `FUNCTION coach.f(uuid)`.
    sql: String,
    /// For column privileges: the column (GRANT writes `UPDATE (col) ON TABLE t`).
    column: Option<&'a str>,
}

impl<'a> Granted<'a> {
    fn relation(
        schema: &'a str,
        table: Option<&'a str>,
        object: &'a str,
        kind: &'a str,
        sql: String,
    ) -> Self {
        Granted {
            schema,
            table,
            object,
            kind,
            sql,
            column: None,
        }
    }
}

/// Compares the privileges each role holds on one object; the remedy is the GRANT or REVOKE
/// that brings the database back to the lock.
fn grants(at: &Granted, lock: &Grants, db: &Grants, out: &mut Vec<Finding>) {
    let none = Vec::new();
    each(lock, db, |role, l, d| {
        let (l, d) = (l.unwrap_or(&none), d.unwrap_or(&none));
        if l == d {
            return;
        }
        let privilege = |p: &String| {
            let base = p.trim_end_matches(" WITH GRANT OPTION");
            match at.column {
                Some(column) => format!("{base} ({})", sql_name(column)),
                None => base.to_string(),
            }
        };
        let extra: Vec<String> = d.iter().filter(|p| !l.contains(p)).map(privilege).collect();
        let missing: Vec<String> = l.iter().filter(|p| !d.contains(p)).map(privilege).collect();
        let grantee = if role == "PUBLIC" {
            role.to_string()
        } else {
            sql_name(role)
        };
        let mut remedy = Vec::new();
        if !extra.is_empty() {
            remedy.push(format!(
                "REVOKE {} ON {} FROM {grantee}",
                extra.join(", "),
                at.sql
            ));
        }
        if !missing.is_empty() {
            remedy.push(format!(
                "GRANT {} ON {} TO {grantee}",
                missing.join(", "),
                at.sql
            ));
        }
        let show = |p: &Vec<String>| {
            if p.is_empty() {
                "(none)".to_string()
            } else {
                p.join(", ")
            }
        };
        let name = if at.kind == "function" {
            at.object.to_string()
        } else {
            sql_name(at.object)
        };
        out.push(Finding {
            rule: Rule::Drift,
            level: Level::Error,
            schema: Some(at.schema.to_string()),
            table: at.table.map(String::from),
            object: at.object.to_string(),
            message: format!(
                "privileges of {role} on {} {name} differ: lock `{}`, database `{}`",
                at.kind,
                show(l),
                show(d)
            ),
            remedy: format!(
                "{}; or make the change in a new migration and run `migrate lock`",
                remedy.join("; ")
            ),
            acknowledged: None,
        });
    });
}

fn type_fields(lock: &TypeLock, db: &TypeLock) -> String {
    let opt = |o: &Option<String>| o.clone().unwrap_or_default();
    fields(&[
        ("kind", lock.kind.clone(), db.kind.clone()),
        ("values", lock.values.join(", "), db.values.join(", ")),
        ("definition", opt(&lock.definition), opt(&db.definition)),
    ])
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
    let on = format!("TABLE {}.{}", sql_name(schema), sql_name(name));
    let at = Granted::relation(schema, t, name, "table", on.clone());
    grants(&at, &lock.grants, &db.grants, out);
    let none = Grants::new();
    each(&lock.column_grants, &db.column_grants, |column, l, d| {
        let at = Granted {
            column: Some(column),
            ..Granted::relation(schema, t, column, "column", on.clone())
        };
        grants(&at, l.unwrap_or(&none), d.unwrap_or(&none), out);
    });
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
                    grants: Grants::new(),
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
