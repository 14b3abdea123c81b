//! `schema.lock` (DESIGN §8): the migrations it was made from and the catalog they produce,
//! as deterministic TOML (sorted maps only), with a fingerprint over the catalog part.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::catalog::{self, Catalog, Grants};
use crate::error::Error;
use crate::migrations::{self, Migration};

const HEADER: &str = "\
# schema.lock: written by `migrate lock` from the migrations listed below. Do not edit by hand.
# `migrate check` fails when a migration file or the managed schema list differs from this
# lock; `migrate verify` compares a database at the lock's head with the catalog below.
";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lockfile {
    /// SHA-256 over the canonical (JSON) serialization of `schemas`.
    pub fingerprint: String,
    /// The managed schemas (`migrate.toml`) the lock was made for, sorted. `schemas` holds
    /// those of them that exist.
    pub managed_schemas: Vec<String>,
    pub migrations: Vec<LockedMigration>,
    pub schemas: BTreeMap<String, SchemaLock>,
    /// Triggers the migrations put on tables outside the managed schemas (such as
    /// `auth.users`): schema → table → trigger name → `pg_get_triggerdef`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outside_triggers: OutsideTriggers,
}

/// schema → table → trigger name → `pg_get_triggerdef` (with ` -- DISABLED` when disabled).
pub type OutsideTriggers = BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockedMigration {
    pub version: i64,
    pub name: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchemaLock {
    /// Privileges on the schema (`USAGE`, `CREATE`) per role.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub grants: Grants,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub tables: BTreeMap<String, TableLock>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub views: BTreeMap<String, ViewLock>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub materialized_views: BTreeMap<String, MaterializedViewLock>,
    /// Sequence name → its privileges per role.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub sequences: BTreeMap<String, SequenceLock>,
    /// Keyed by signature, `name(arguments)`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub functions: BTreeMap<String, FunctionLock>,
    /// Enums, domains, composite and range types.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub types: BTreeMap<String, TypeLock>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TableLock {
    pub rls_enabled: bool,
    pub rls_forced: bool,
    /// Column name → `type [NOT NULL] [DEFAULT expr]`.
    pub columns: BTreeMap<String, String>,
    /// Constraint name → `pg_get_constraintdef`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub constraints: BTreeMap<String, String>,
    /// Index name → `pg_get_indexdef`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub indexes: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub policies: BTreeMap<String, PolicyLock>,
    /// Trigger name → `pg_get_triggerdef`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub triggers: BTreeMap<String, String>,
    /// Table privileges per role.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub grants: Grants,
    /// Column name → column privileges per role (`GRANT UPDATE (col)`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub column_grants: BTreeMap<String, Grants>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ViewLock {
    /// `pg_get_viewdef`.
    pub definition: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grants: Grants,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SequenceLock {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub grants: Grants,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TypeLock {
    /// `enum`, `domain`, `composite` or `range`.
    pub kind: String,
    /// An enum's labels in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    /// A domain's base type, NOT NULL, DEFAULT and constraints; a composite's attributes; a
    /// range's subtype.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyLock {
    pub command: String,
    pub permissive: bool,
    pub roles: Vec<String>,
    pub using: Option<String>,
    pub with_check: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaterializedViewLock {
    pub definition: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub indexes: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grants: Grants,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionLock {
    pub returns: Option<String>,
    pub language: String,
    pub security_definer: bool,
    pub volatility: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<String>,
    pub body_sha256: String,
    /// EXECUTE per role; PostgreSQL grants it to PUBLIC unless revoked.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub grants: Grants,
}

impl Lockfile {
    /// The lock for `migrations` and the catalog they produced in the `managed` schemas.
    pub fn new(migrations: &[Migration], managed: &[String], catalog: &Catalog) -> Lockfile {
        let schemas = lock_catalog(catalog);
        let outside_triggers = outside_triggers(catalog);
        Lockfile {
            fingerprint: fingerprint(&schemas, &outside_triggers),
            managed_schemas: schema_list(managed),
            migrations: migrations
                .iter()
                .map(|m| LockedMigration {
                    version: m.version,
                    name: m.name.clone(),
                    sha256: m.checksum.clone(),
                })
                .collect(),
            schemas,
            outside_triggers,
        }
    }

    /// The text written to disk: a header comment, then sorted TOML.
    pub fn render(&self) -> String {
        let body = toml::to_string_pretty(self).expect("the lock model always serializes");
        format!("{HEADER}\n{body}")
    }

    /// Reads the TOML text of a lock.
    pub fn parse(text: &str) -> Result<Lockfile, toml::de::Error> {
        toml::from_str(text)
    }

    /// Reads the lock at `path`; `None` when the file does not exist.
    pub fn read(path: &Path, shown: &str) -> Result<Option<Lockfile>, Error> {
        let invalid = |e: &dyn std::fmt::Display| {
            Error::input(format!(
                "{shown} is not a valid schema.lock: {e}\nregenerate it with `migrate lock`"
            ))
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => return Err(invalid(&e)),
            Err(e) => return Err(Error::input(format!("cannot read {shown}: {e}"))),
        };
        let lock = Lockfile::parse(&text).map_err(|e| invalid(&e.to_string().trim_end()))?;
        if lock.fingerprint != fingerprint(&lock.schemas, &lock.outside_triggers) {
            return Err(Error::input(format!(
                "{shown}: the fingerprint does not match the catalog it holds (edited by hand?); \
                 regenerate it with `migrate lock`"
            )));
        }
        Ok(Some(lock))
    }

    /// The schemas the lock was made for, when `migrate.toml` now manages others (in any
    /// order the same list is the same).
    pub fn other_schemas(&self, managed: &[String]) -> Option<&[String]> {
        (self.managed_schemas != schema_list(managed)).then_some(self.managed_schemas.as_slice())
    }

    /// The highest migration version the lock was made from.
    pub fn head(&self) -> Option<i64> {
        self.migrations.iter().map(|m| m.version).max()
    }
}

/// A schema list as the lock records it: sorted, each name once.
pub fn schema_list(managed: &[String]) -> Vec<String> {
    let mut list = managed.to_vec();
    list.sort();
    list.dedup();
    list
}

/// SHA-256 over the canonical serialization of the catalog part (the outside triggers
/// appended when there are any, so a lock without them keeps its fingerprint).
pub fn fingerprint(schemas: &BTreeMap<String, SchemaLock>, outside: &OutsideTriggers) -> String {
    let mut canonical = serde_json::to_vec(schemas).expect("the lock model always serializes");
    if !outside.is_empty() {
        canonical.extend(serde_json::to_vec(outside).expect("the lock model always serializes"));
    }
    migrations::hex(&Sha256::digest(&canonical))
}

/// The lock's view of the triggers on tables outside the managed schemas.
pub fn outside_triggers(catalog: &Catalog) -> OutsideTriggers {
    let mut out = OutsideTriggers::new();
    for t in &catalog.outside_triggers {
        out.entry(t.schema.clone())
            .or_default()
            .entry(t.table.clone())
            .or_default()
            .insert(t.trigger.name.clone(), trigger_definition(&t.trigger));
    }
    out
}

/// The lock's view of a catalog: what drift compares. Validity, column numbers and which
/// roles RLS applies to are left out (verify checks them on the live database).
pub fn lock_catalog(catalog: &Catalog) -> BTreeMap<String, SchemaLock> {
    catalog
        .schemas
        .iter()
        .map(|(name, schema)| (name.clone(), lock_schema(schema)))
        .collect()
}

fn lock_schema(schema: &catalog::Schema) -> SchemaLock {
    SchemaLock {
        grants: schema.grants.clone(),
        sequences: schema
            .sequences
            .iter()
            .map(|(name, s)| {
                (
                    name.clone(),
                    SequenceLock {
                        grants: s.grants.clone(),
                    },
                )
            })
            .collect(),
        types: schema
            .types
            .iter()
            .map(|(name, t)| {
                (
                    name.clone(),
                    TypeLock {
                        kind: t.kind.clone(),
                        values: t.values.clone(),
                        definition: t.definition.clone(),
                    },
                )
            })
            .collect(),
        tables: schema
            .tables
            .iter()
            .map(|(name, t)| (name.clone(), lock_table(t)))
            .collect(),
        views: schema
            .views
            .iter()
            .map(|(name, v)| {
                (
                    name.clone(),
                    ViewLock {
                        definition: v.definition.clone(),
                        grants: v.grants.clone(),
                    },
                )
            })
            .collect(),
        materialized_views: schema
            .materialized_views
            .iter()
            .map(|(name, v)| {
                (
                    name.clone(),
                    MaterializedViewLock {
                        definition: v.definition.clone(),
                        indexes: indexes(&v.indexes),
                        grants: v.grants.clone(),
                    },
                )
            })
            .collect(),
        functions: schema
            .functions
            .iter()
            .map(|(signature, f)| {
                (
                    signature.clone(),
                    FunctionLock {
                        returns: f.returns.clone(),
                        language: f.language.clone(),
                        security_definer: f.security_definer,
                        volatility: f.volatility.clone(),
                        config: f.config.clone(),
                        body_sha256: f.body_sha256.clone(),
                        grants: f.grants.clone(),
                    },
                )
            })
            .collect(),
    }
}

fn lock_table(table: &catalog::Table) -> TableLock {
    TableLock {
        rls_enabled: table.rls_enabled,
        rls_forced: table.rls_forced,
        columns: table
            .columns
            .iter()
            .map(|c| (c.name.clone(), c.definition()))
            .collect(),
        constraints: table
            .constraints
            .iter()
            .map(|c| (c.name.clone(), c.definition.clone()))
            .collect(),
        indexes: indexes(&table.indexes),
        policies: table
            .policies
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    PolicyLock {
                        command: p.command.clone(),
                        permissive: p.permissive,
                        roles: p.roles.clone(),
                        using: p.using.clone(),
                        with_check: p.with_check.clone(),
                    },
                )
            })
            .collect(),
        triggers: table
            .triggers
            .iter()
            .map(|t| (t.name.clone(), trigger_definition(t)))
            .collect(),
        grants: table.grants.clone(),
        column_grants: table
            .columns
            .iter()
            .filter(|c| !c.grants.is_empty())
            .map(|c| (c.name.clone(), c.grants.clone()))
            .collect(),
    }
}

/// `pg_get_triggerdef`, marked when the trigger is disabled.
fn trigger_definition(t: &catalog::Trigger) -> String {
    if t.enabled {
        t.definition.clone()
    } else {
        format!("{} -- DISABLED", t.definition)
    }
}

fn indexes(indexes: &[catalog::Index]) -> BTreeMap<String, String> {
    indexes
        .iter()
        .map(|i| (i.name.clone(), i.definition.clone()))
        .collect()
}

/// How a migration file differs from the lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// A file the lock does not list.
    Added,
    /// A version the lock lists whose file is gone.
    Removed,
    /// Same version, different bytes.
    Edited,
    /// Same version, different name.
    Renamed,
}

impl Change {
    /// The stable name, as JSON and the database write it.
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// A migration file that differs from the lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stale {
    pub file: String,
    pub change: Change,
}

/// Every file that was added, removed, edited or renamed since the lock was written; `dir`
/// is how the migrations directory is shown (for removed files). A new file whose UP section
/// is still empty is not counted.
pub fn stale(files: &[Migration], lock: &Lockfile, dir: &str) -> Vec<Stale> {
    let locked: BTreeMap<i64, &LockedMigration> =
        lock.migrations.iter().map(|m| (m.version, m)).collect();
    let mut out = Vec::new();
    for file in files {
        let change = match locked.get(&file.version) {
            // A skeleton from `migrate new` is not a migration yet: `lock` refuses it.
            None if file.is_empty() => None,
            None => Some(Change::Added),
            Some(l) if l.name != file.name => Some(Change::Renamed),
            Some(l) if l.sha256 != file.checksum => Some(Change::Edited),
            Some(_) => None,
        };
        if let Some(change) = change {
            out.push(Stale {
                file: file.path.clone(),
                change,
            });
        }
    }
    for l in &lock.migrations {
        if !files.iter().any(|f| f.version == l.version) {
            out.push(Stale {
                file: format!("{dir}/{}", migrations::file_name(l.version, &l.name)),
                change: Change::Removed,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrations::Section;

    fn file(version: i64, name: &str, checksum: &str) -> Migration {
        Migration {
            version,
            name: name.into(),
            domain: "coach".into(),
            path: format!("migrations/{version:04}_{name}.sql"),
            checksum: checksum.into(),
            checksum_without_bom: None,
            up: Section {
                sql: "select 1;".into(),
                first_line: 2,
            },
            down: Section {
                sql: String::new(),
                first_line: 3,
            },
            transactional: true,
        }
    }

    fn sample() -> Lockfile {
        let mut table = TableLock {
            rls_enabled: true,
            ..TableLock::default()
        };
        table.columns.insert(
            "id".into(),
            "uuid NOT NULL DEFAULT gen_random_uuid()".into(),
        );
        table.policies.insert(
            "own rows".into(),
            PolicyLock {
                command: "SELECT".into(),
                permissive: true,
                roles: vec!["authenticated".into()],
                using: Some("(id = ( SELECT auth.uid() AS uid))".into()),
                with_check: None,
            },
        );
        let mut schema = SchemaLock::default();
        schema.tables.insert("users".into(), table);
        schema.views.insert(
            "v".into(),
            ViewLock {
                definition: " SELECT users.id\n   FROM coach.users;".into(),
                grants: Grants::from([("anon".into(), vec!["SELECT".into()])]),
            },
        );
        schema.types.insert(
            "mood".into(),
            TypeLock {
                kind: "enum".into(),
                values: vec!["low".into(), "high".into()],
                definition: None,
            },
        );
        let mut schemas = BTreeMap::new();
        schemas.insert("coach".into(), schema);
        let outside_triggers = OutsideTriggers::from([(
            "auth".to_string(),
            BTreeMap::from([(
                "users".to_string(),
                BTreeMap::from([(
                    "on_signup".to_string(),
                    "CREATE TRIGGER on_signup AFTER INSERT ON auth.users ...".to_string(),
                )]),
            )]),
        )]);
        Lockfile {
            fingerprint: fingerprint(&schemas, &outside_triggers),
            managed_schemas: vec!["coach".into(), "wellness".into()],
            migrations: vec![LockedMigration {
                version: 1,
                name: "coach_a".into(),
                sha256: "aa".into(),
            }],
            schemas,
            outside_triggers,
        }
    }

    #[test]
    fn renders_and_parses_back() {
        let lock = sample();
        let text = lock.render();
        assert!(text.starts_with("# schema.lock"));
        assert!(
            text.contains("[schemas.coach.tables.users.columns]"),
            "{text}"
        );
        assert_eq!(Lockfile::parse(&text).unwrap(), lock);
        assert_eq!(lock.render(), text, "rendering is deterministic");
    }

    #[test]
    fn the_schema_list_compares_as_a_set() {
        let lock = sample();
        let list = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        assert_eq!(lock.other_schemas(&list(&["wellness", "coach"])), None);
        assert_eq!(
            lock.other_schemas(&list(&["coach", "wellness", "coach"])),
            None
        );
        assert_eq!(
            lock.other_schemas(&list(&["coach"])),
            Some(&list(&["coach", "wellness"])[..])
        );
    }

    #[test]
    fn fingerprint_covers_the_catalog_only() {
        let mut lock = sample();
        let before = lock.fingerprint.clone();
        lock.migrations[0].sha256 = "bb".into();
        let of = |lock: &Lockfile| fingerprint(&lock.schemas, &lock.outside_triggers);
        assert_eq!(of(&lock), before);
        lock.schemas
            .get_mut("coach")
            .unwrap()
            .tables
            .get_mut("users")
            .unwrap()
            .rls_forced = true;
        assert_ne!(of(&lock), before);
        let mut lock = sample();
        lock.outside_triggers.clear();
        assert_ne!(of(&lock), before, "the outside triggers are covered");
        let schemas_only = serde_json::to_vec(&lock.schemas).unwrap();
        assert_eq!(
            of(&lock),
            migrations::hex(&Sha256::digest(&schemas_only)),
            "a lock without them keeps the fingerprint it had before they were recorded"
        );
    }

    #[test]
    fn stale_names_every_change() {
        let lock = Lockfile {
            migrations: vec![
                LockedMigration {
                    version: 1,
                    name: "coach_a".into(),
                    sha256: "a".into(),
                },
                LockedMigration {
                    version: 2,
                    name: "coach_b".into(),
                    sha256: "b".into(),
                },
                LockedMigration {
                    version: 3,
                    name: "coach_c".into(),
                    sha256: "c".into(),
                },
                LockedMigration {
                    version: 4,
                    name: "coach_d".into(),
                    sha256: "d".into(),
                },
            ],
            ..Lockfile::default()
        };
        let files = vec![
            file(1, "coach_a", "a"),
            file(2, "coach_b", "x"),
            file(3, "coach_renamed", "c"),
            file(5, "coach_e", "e"),
        ];
        let changes: Vec<(String, Change)> = stale(&files, &lock, "migrations")
            .into_iter()
            .map(|s| (s.file, s.change))
            .collect();
        assert_eq!(
            changes,
            vec![
                ("migrations/0002_coach_b.sql".into(), Change::Edited),
                ("migrations/0003_coach_renamed.sql".into(), Change::Renamed),
                ("migrations/0005_coach_e.sql".into(), Change::Added),
                ("migrations/0004_coach_d.sql".into(), Change::Removed),
            ]
        );
        assert_eq!(stale(&files[..1], &lock, "migrations").len(), 3);
        // A new skeleton whose UP is still empty does not make the lock stale.
        let mut skeleton = file(5, "coach_e", "e");
        skeleton.up.sql = "-- to do\n".into();
        let files = [
            file(1, "coach_a", "a"),
            file(2, "coach_b", "b"),
            file(3, "coach_c", "c"),
        ];
        let with_skeleton: Vec<Migration> = files.iter().cloned().chain([skeleton]).collect();
        assert_eq!(
            stale(&with_skeleton, &lock, "migrations").len(),
            stale(&files, &lock, "migrations").len()
        );
    }
}
