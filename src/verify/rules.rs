//! Rules over the live catalog: row-level security, security-definer hygiene, indexes and keys.
//! Names and intent follow Supabase's database linter (splinter); levels follow DESIGN §8.

use std::collections::{BTreeMap, BTreeSet};

use super::{Finding, Level, Rule};
use crate::db::catalog::{Catalog, ConstraintKind, Function, Index, Policy, Table, View};

/// Every rule over `catalog`.
pub fn lint(catalog: &Catalog) -> Vec<Finding> {
    let user_data = user_data_tables(catalog);
    let mut out = Vec::new();
    for (schema_name, schema) in &catalog.schemas {
        for (table_name, table) in &schema.tables {
            let at = Place {
                schema: schema_name,
                table: table_name,
            };
            let holds_user_data = user_data.contains(&(schema_name.as_str(), table_name.as_str()));
            row_level_security(&at, table, holds_user_data, &mut out);
            multiple_permissive_policies(&at, table, &catalog.rls_roles, &mut out);
            keys_and_indexes(&at, table, &mut out);
        }
        for (name, view) in &schema.views {
            let at = Place {
                schema: schema_name,
                table: name,
            };
            security_definer_view(&at, view, &mut out);
        }
        for (name, view) in &schema.materialized_views {
            let at = Place {
                schema: schema_name,
                table: name,
            };
            materialized_view_in_api(&at, view, &mut out);
            invalid_indexes(&at, &view.indexes, &mut out);
        }
        for function in schema.functions.values() {
            search_path(schema_name, function, &mut out);
            executable_security_definer(schema_name, function, &mut out);
        }
    }
    out
}

/// Where a finding is: a schema and a table (or view).
struct Place<'a> {
    schema: &'a str,
    table: &'a str,
}

impl Place<'_> {
    fn finding(
        &self,
        rule: Rule,
        level: Level,
        object: &str,
        message: String,
        remedy: String,
    ) -> Finding {
        Finding {
            rule,
            level,
            schema: Some(self.schema.to_string()),
            table: Some(self.table.to_string()),
            object: object.to_string(),
            message,
            remedy,
            acknowledged: None,
        }
    }

    /// `schema.table` as SQL.
    fn sql(&self) -> String {
        format!("{}.{}", sql_name(self.schema), sql_name(self.table))
    }
}

/// An identifier as SQL: bare when it is a plain lowercase name, quoted otherwise.
pub fn sql_name(name: &str) -> String {
    let plain = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if plain {
        name.to_string()
    } else {
        crate::db::quote_ident(name)
    }
}

fn row_level_security(at: &Place, table: &Table, holds_user_data: bool, out: &mut Vec<Finding>) {
    if !table.rls_enabled {
        out.push(
            at.finding(
                Rule::RlsDisabled,
                Level::Error,
                at.table,
                "row level security is disabled: anon and authenticated reach every row their \
             grants allow"
                    .into(),
                format!(
                    "ALTER TABLE {} ENABLE ROW LEVEL SECURITY; and add policies",
                    at.sql()
                ),
            ),
        );
    } else if table.policies.is_empty() {
        out.push(
            at.finding(
                Rule::RlsEnabledNoPolicy,
                Level::Warning,
                at.table,
                "row level security is enabled but no policy exists: only service_role and the \
             owner reach its rows"
                    .into(),
                "add policies for the roles that need it, or keep it service-only on purpose"
                    .into(),
            ),
        );
    }
    for policy in &table.policies {
        if holds_user_data {
            if let Some(clause) = always_true(policy) {
                out.push(at.finding(
                    Rule::RlsPolicyAlwaysTrue,
                    Level::Error,
                    &policy.name,
                    format!(
                        "policy \"{}\" (FOR {} TO {}) allows every row: {clause}",
                        policy.name,
                        policy.command,
                        policy.roles.join(", ")
                    ),
                    "restrict it to the caller's rows, e.g. USING (user_id = (select auth.uid()))"
                        .into(),
                ));
            }
        }
        let calls: BTreeSet<&str> = [&policy.using, &policy.with_check]
            .into_iter()
            .flatten()
            .flat_map(|e| per_row_calls(e))
            .collect();
        if !calls.is_empty() {
            let calls: Vec<&str> = calls.into_iter().collect();
            out.push(at.finding(
                Rule::AuthRlsInitplan,
                Level::Warning,
                &policy.name,
                format!(
                    "policy \"{}\" calls {} once per row",
                    policy.name,
                    calls.join(", ")
                ),
                format!(
                    "wrap each call in a sub-select so it runs once per query: (select {})",
                    calls[0].trim_end_matches('(')
                ),
            ));
        }
    }
}

/// The clause that makes a permissive policy for `anon`/`authenticated` let every row through,
/// if any. A policy without USING (or without WITH CHECK for INSERT) denies in PostgreSQL, so
/// only a constant `true` counts.
fn always_true(policy: &Policy) -> Option<&'static str> {
    if !policy.permissive || !policy.applies_to_api_roles() {
        return None;
    }
    let is_true = |e: &Option<String>| e.as_deref().is_some_and(is_true_literal);
    match policy.command.as_str() {
        "INSERT" if is_true(&policy.with_check) => Some("WITH CHECK (true)"),
        "INSERT" => None,
        _ if is_true(&policy.using) => Some("USING (true)"),
        "UPDATE" | "ALL" if is_true(&policy.with_check) => Some("WITH CHECK (true)"),
        _ => None,
    }
}

fn is_true_literal(expr: &str) -> bool {
    let mut e = expr.trim();
    while let Some(inner) = e.strip_prefix('(').and_then(|x| x.strip_suffix(')')) {
        e = inner.trim();
    }
    e.eq_ignore_ascii_case("true")
}

/// Calls that PostgreSQL evaluates once per row unless wrapped in `(select ...)`.
const PER_ROW: [&str; 5] = [
    "auth.uid()",
    "auth.jwt()",
    "auth.role()",
    "auth.email()",
    "current_setting(",
];

/// The per-row calls in a policy expression that are not the start of a sub-select: in
/// `pg_get_expr` output a wrapped call reads `( SELECT auth.uid() AS uid)`.
pub fn per_row_calls(expr: &str) -> Vec<&'static str> {
    let lower = expr.to_ascii_lowercase();
    PER_ROW
        .into_iter()
        .filter(|call| {
            lower.match_indices(call).any(|(at, _)| {
                let before = lower[..at].trim_end_matches("pg_catalog.");
                let is_name_part = before
                    .bytes()
                    .last()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
                let wrapped = before
                    .trim_end_matches(|c: char| c.is_whitespace() || c == '(')
                    .ends_with("select");
                !is_name_part && !wrapped
            })
        })
        .collect()
}

/// Tables whose rows belong to users: a `user_id`-like or `email` column, a foreign key to
/// `auth.users`, or a foreign key to another such table. The rest is reference data (lesson
/// catalogues, lookup tables), where a `USING (true)` read policy is legitimate.
fn user_data_tables(catalog: &Catalog) -> BTreeSet<(&str, &str)> {
    let mut set: BTreeSet<(&str, &str)> = BTreeSet::from([("auth", "users")]);
    let tables: Vec<((&str, &str), &Table)> = catalog
        .schemas
        .iter()
        .flat_map(|(s, schema)| {
            schema
                .tables
                .iter()
                .map(move |(t, table)| ((s.as_str(), t.as_str()), table))
        })
        .collect();
    for (key, table) in &tables {
        if table.columns.iter().any(|c| is_user_column(&c.name)) {
            set.insert(*key);
        }
    }
    // Follow foreign keys until nothing changes: message → conversation → relationship → user.
    loop {
        let before = set.len();
        for (key, table) in &tables {
            if set.contains(key) {
                continue;
            }
            let references_user_data = table.constraints.iter().any(|c| {
                c.references
                    .as_ref()
                    .is_some_and(|(s, t)| set.contains(&(s.as_str(), t.as_str())))
            });
            if references_user_data {
                set.insert(*key);
            }
        }
        if set.len() == before {
            return set;
        }
    }
}

fn is_user_column(name: &str) -> bool {
    matches!(name, "user_id" | "owner_id" | "email") || name.ends_with("_user_id")
}

fn keys_and_indexes(at: &Place, table: &Table, out: &mut Vec<Finding>) {
    let indexes = &table.indexes;
    let has_primary_key = table
        .constraints
        .iter()
        .any(|c| c.kind == ConstraintKind::PrimaryKey);
    if !has_primary_key {
        out.push(
            at.finding(
                Rule::NoPrimaryKey,
                Level::Warning,
                at.table,
                "the table has no primary key: rows cannot be addressed one by one (replication, \
             seeds, updates)"
                    .into(),
                format!("ALTER TABLE {} ADD PRIMARY KEY (...)", at.sql()),
            ),
        );
    }
    invalid_indexes(at, indexes, out);
    duplicate_indexes(at, indexes, out);
    for fk in table
        .constraints
        .iter()
        .filter(|c| c.kind == ConstraintKind::ForeignKey)
    {
        if !covered(&fk.columns, indexes) {
            let names: Vec<String> = fk
                .columns
                .iter()
                .map(|n| {
                    table
                        .columns
                        .iter()
                        .find(|c| c.number == *n)
                        .map_or_else(|| format!("#{n}"), |c| sql_name(&c.name))
                })
                .collect();
            out.push(at.finding(
                Rule::UnindexedForeignKeys,
                Level::Info,
                &fk.name,
                format!(
                    "foreign key {} ({}) has no index whose leading columns cover it: deleting \
                     or re-keying a referenced row scans the whole table",
                    fk.name,
                    names.join(", ")
                ),
                format!("CREATE INDEX ON {} ({})", at.sql(), names.join(", ")),
            ));
        }
    }
}

/// Whether a valid, non-partial index leads with exactly the key's columns, in any order.
fn covered(key: &[i16], indexes: &[Index]) -> bool {
    let mut wanted = key.to_vec();
    wanted.sort_unstable();
    indexes
        .iter()
        .filter(|i| i.valid && !i.partial && i.key_columns.len() >= key.len())
        .any(|i| {
            let mut leading = i.key_columns[..key.len()].to_vec();
            leading.sort_unstable();
            leading == wanted
        })
}

fn invalid_indexes(at: &Place, indexes: &[Index], out: &mut Vec<Finding>) {
    for index in indexes.iter().filter(|i| !i.valid) {
        out.push(at.finding(
            Rule::IndexInvalid,
            Level::Error,
            &index.name,
            format!(
                "index {} is invalid (a failed CREATE INDEX CONCURRENTLY?): queries do not use \
                 it, writes still maintain it",
                index.name
            ),
            format!(
                "REINDEX INDEX CONCURRENTLY {}.{}",
                sql_name(at.schema),
                sql_name(&index.name)
            ),
        ));
    }
}

/// Indexes whose definitions are equal but for their names.
fn duplicate_indexes(at: &Place, indexes: &[Index], out: &mut Vec<Finding>) {
    let mut by_shape: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for index in indexes {
        by_shape
            .entry(without_name(index))
            .or_default()
            .push(&index.name);
    }
    for names in by_shape.values().filter(|n| n.len() > 1) {
        out.push(at.finding(
            Rule::DuplicateIndex,
            Level::Warning,
            names[0],
            format!("indexes {} are identical", names.join(", ")),
            format!(
                "drop all but one, e.g. DROP INDEX {}.{}",
                sql_name(at.schema),
                sql_name(names[names.len() - 1])
            ),
        ));
    }
}

/// `pg_get_indexdef` without the index's name, which it writes bare or quoted (PostgreSQL
/// also quotes keywords such as `user`, which `sql_name` leaves bare).
fn without_name(index: &Index) -> String {
    [crate::db::quote_ident(&index.name), index.name.clone()]
        .iter()
        .map(|written| format!(" INDEX {written} ON "))
        .find(|named| index.definition.contains(named.as_str()))
        .map_or_else(
            || index.definition.clone(),
            |named| index.definition.replacen(&named, " INDEX ON ", 1),
        )
}

fn security_definer_view(at: &Place, view: &View, out: &mut Vec<Finding>) {
    if !view.readers.is_empty() && !view.security_invoker {
        out.push(at.finding(
            Rule::SecurityDefinerView,
            Level::Error,
            at.table,
            format!(
                "view readable by {} runs with its owner's rights, so the RLS of the tables it \
                 reads does not apply",
                view.readers.join(", ")
            ),
            format!("ALTER VIEW {} SET (security_invoker = on)", at.sql()),
        ));
    }
}

fn materialized_view_in_api(at: &Place, view: &View, out: &mut Vec<Finding>) {
    if !view.readers.is_empty() {
        out.push(at.finding(
            Rule::MaterializedViewInApi,
            Level::Warning,
            at.table,
            format!(
                "materialized view readable by {}: row level security does not apply to it",
                view.readers.join(", ")
            ),
            format!(
                "REVOKE SELECT ON {} FROM {}; expose it through a function that filters rows",
                at.sql(),
                view.readers.join(", ")
            ),
        ));
    }
}

fn search_path(schema: &str, function: &Function, out: &mut Vec<Finding>) {
    // An aggregate takes no SET clause; its support functions are checked on their own.
    if function.kind == 'a' || function.fixed_search_path() {
        return;
    }
    let routine = if function.kind == 'p' {
        "PROCEDURE"
    } else {
        "FUNCTION"
    };
    let signature = function.signature();
    let (level, message) = if function.security_definer {
        (
            Level::Error,
            "SECURITY DEFINER function without a fixed search_path: a caller's objects can \
             shadow the ones it uses, with the owner's rights",
        )
    } else {
        (
            Level::Warning,
            "function without a fixed search_path: what its names resolve to depends on the \
             caller's session",
        )
    };
    out.push(Finding {
        rule: Rule::FunctionSearchPathMutable,
        level,
        schema: Some(schema.to_string()),
        table: None,
        object: signature.clone(),
        message: message.into(),
        remedy: format!(
            "ALTER {routine} {}.{}({}) SET search_path = '' (and qualify the names in its body)",
            sql_name(schema),
            sql_name(&function.name),
            function.arguments
        ),
        acknowledged: None,
    });
}

/// splinter's `multiple_permissive_policies`: on a regular table, two or more permissive
/// policies apply to one role for one command, so each runs for every row of every query
/// (and the most lenient decides). A policy for PUBLIC applies to every role in `rls_roles`;
/// `ALL` counts for each of SELECT, INSERT, UPDATE and DELETE. One finding per role and
/// command, as splinter reports them.
fn multiple_permissive_policies(
    at: &Place,
    table: &Table,
    rls_roles: &[String],
    out: &mut Vec<Finding>,
) {
    if table.partitioned {
        return;
    }
    let mut by_role: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for policy in table.policies.iter().filter(|p| p.permissive) {
        let roles: Vec<&str> = if policy.roles == ["public"] {
            rls_roles.iter().map(String::as_str).collect()
        } else {
            policy
                .roles
                .iter()
                .map(String::as_str)
                .filter(|r| rls_roles.iter().any(|x| x == r))
                .collect()
        };
        let commands: Vec<&str> = match policy.command.as_str() {
            "ALL" => vec!["SELECT", "INSERT", "UPDATE", "DELETE"],
            one => vec![one],
        };
        for role in roles {
            for command in &commands {
                by_role
                    .entry((role, command))
                    .or_default()
                    .push(&policy.name);
            }
        }
    }
    for ((role, command), mut policies) in by_role.into_iter().filter(|(_, p)| p.len() > 1) {
        policies.sort_unstable();
        let names: Vec<String> = policies.iter().map(|p| format!("\"{p}\"")).collect();
        out.push(at.finding(
            Rule::MultiplePermissivePolicies,
            Level::Warning,
            at.table,
            format!(
                "{} permissive policies apply to {role} for {command}: {}; each runs for every \
                 row, and the most lenient decides",
                policies.len(),
                names.join(", ")
            ),
            format!(
                "combine them into one permissive policy for {role} FOR {command} on {} whose \
                 condition ORs theirs (or make the ones meant to narrow it RESTRICTIVE)",
                at.sql()
            ),
        ));
    }
}

/// splinter's `anon_security_definer_function_executable` and
/// `authenticated_security_definer_function_executable`: a SECURITY DEFINER function in an
/// exposed (managed) schema that the API role may execute, so any caller — through
/// `/rest/v1/rpc/<name>` — runs it with its owner's rights, past RLS.
fn executable_security_definer(schema: &str, function: &Function, out: &mut Vec<Finding>) {
    if !function.security_definer {
        return;
    }
    let routine = if function.kind == 'p' {
        "PROCEDURE"
    } else {
        "FUNCTION"
    };
    for role in &function.executable_by {
        let (rule, who) = match role.as_str() {
            "anon" => (
                Rule::AnonSecurityDefinerFunctionExecutable,
                "anyone, signed in or not",
            ),
            "authenticated" => (
                Rule::AuthenticatedSecurityDefinerFunctionExecutable,
                "every signed-in user",
            ),
            _ => continue,
        };
        out.push(Finding {
            rule,
            level: Level::Error,
            schema: Some(schema.to_string()),
            table: None,
            object: function.signature(),
            message: format!(
                "SECURITY DEFINER function executable by {role}: {who} can call it (through \
                 /rest/v1/rpc/{}) and it runs with its owner's rights, past row level security",
                function.name
            ),
            remedy: format!(
                "REVOKE EXECUTE ON {routine} {}.{}({}) FROM PUBLIC, {role}; or make it SECURITY \
                 INVOKER, or move it to a schema the API does not expose",
                sql_name(schema),
                sql_name(&function.name),
                function.arguments
            ),
            acknowledged: None,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(command: &str, roles: &[&str], using: Option<&str>, check: Option<&str>) -> Policy {
        Policy {
            name: "p".into(),
            command: command.into(),
            permissive: true,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            using: using.map(String::from),
            with_check: check.map(String::from),
        }
    }

    #[test]
    fn always_true_policies() {
        assert_eq!(
            always_true(&policy("SELECT", &["authenticated"], Some("true"), None)),
            Some("USING (true)")
        );
        assert_eq!(
            always_true(&policy("ALL", &["public"], Some("(true)"), None)),
            Some("USING (true)")
        );
        assert_eq!(
            always_true(&policy("INSERT", &["anon"], None, Some("true"))),
            Some("WITH CHECK (true)")
        );
        assert_eq!(
            always_true(&policy(
                "UPDATE",
                &["authenticated"],
                Some("(user_id = ( SELECT auth.uid() AS uid))"),
                Some("true")
            )),
            Some("WITH CHECK (true)")
        );
        // Not for API roles, restrictive, or a real qualifier: fine.
        assert_eq!(
            always_true(&policy("SELECT", &["service_role"], Some("true"), None)),
            None
        );
        let mut restrictive = policy("SELECT", &["authenticated"], Some("true"), None);
        restrictive.permissive = false;
        assert_eq!(always_true(&restrictive), None);
        assert_eq!(
            always_true(&policy(
                "SELECT",
                &["authenticated"],
                Some("is_active"),
                None
            )),
            None
        );
        // No expression at all denies in PostgreSQL.
        assert_eq!(
            always_true(&policy("INSERT", &["authenticated"], None, None)),
            None
        );
    }

    #[test]
    fn per_row_calls_are_the_unwrapped_ones() {
        assert_eq!(per_row_calls("(user_id = auth.uid())"), vec!["auth.uid()"]);
        assert!(per_row_calls("(user_id = ( SELECT auth.uid() AS uid))").is_empty());
        assert!(
            per_row_calls("(( SELECT (auth.jwt() ->> 'role'::text)) = 'admin'::text)").is_empty()
        );
        assert_eq!(
            per_row_calls("((a = ( SELECT auth.uid() AS uid)) OR (b = auth.uid()))"),
            vec!["auth.uid()"]
        );
        assert_eq!(
            per_row_calls("(x = pg_catalog.current_setting('app.x'::text))"),
            vec!["current_setting("]
        );
        assert!(
            per_row_calls("(x = ( SELECT pg_catalog.current_setting('app.x'::text)))").is_empty()
        );
        assert!(per_row_calls("(myauth.uid() = id)").is_empty());
    }

    fn index(name: &str, keys: &[i16], definition: &str) -> Index {
        Index {
            name: name.into(),
            definition: definition.into(),
            valid: true,
            key_columns: keys.to_vec(),
            partial: false,
        }
    }

    #[test]
    fn foreign_keys_are_covered_by_leading_columns_in_any_order() {
        let indexes = [index("a", &[3, 2, 5], "")];
        assert!(covered(&[2, 3], &indexes));
        assert!(covered(&[3], &indexes));
        assert!(!covered(&[2], &indexes));
        assert!(!covered(&[2, 5], &indexes));
        let mut invalid = index("b", &[2], "");
        invalid.valid = false;
        assert!(!covered(&[2], &[invalid]));
    }

    #[test]
    fn duplicates_ignore_names() {
        let at = Place {
            schema: "coach",
            table: "t",
        };
        let mut out = Vec::new();
        duplicate_indexes(
            &at,
            &[
                index("a", &[1], "CREATE INDEX a ON coach.t USING btree (x)"),
                index("b", &[1], "CREATE INDEX b ON coach.t USING btree (x)"),
                index(
                    "c",
                    &[1],
                    "CREATE UNIQUE INDEX c ON coach.t USING btree (x)",
                ),
            ],
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].message, "indexes a, b are identical");

        // Names PostgreSQL quotes: capitals, and keywords.
        let mut out = Vec::new();
        duplicate_indexes(
            &at,
            &[
                index(
                    "user",
                    &[1],
                    r#"CREATE INDEX "user" ON coach.t USING btree (x)"#,
                ),
                index(
                    "By X",
                    &[1],
                    r#"CREATE INDEX "By X" ON coach.t USING btree (x)"#,
                ),
            ],
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].message, "indexes user, By X are identical");
    }
}
