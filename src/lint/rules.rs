//! Our rules, for what squawk does not know: row-level security, security-definer hygiene
//! and grants to the API roles. Static twins of `verify`'s catalog rules (same intent, read
//! from the migration's syntax tree as squawk's parser builds it).

use std::collections::{BTreeMap, BTreeSet};

use squawk_syntax::{SyntaxKind, SyntaxNode};

use super::Level;

/// One of our rules: a stable kebab-case name and its level (what it catches is said on each).
#[derive(Debug)]
pub struct OwnRule {
    pub name: &'static str,
    pub level: Level,
}

/// A table created in a managed schema without ENABLE ROW LEVEL SECURITY in the same migration.
/// `verify` finds the same on a live database: `rls_disabled`.
const RLS_DISABLED: OwnRule = OwnRule {
    name: "rls-disabled",
    level: Level::Error,
};
/// A policy that calls auth.uid(), auth.jwt(), auth.role(), auth.email() or current_setting() per
/// row.
/// `verify` finds the same on a live database: `auth_rls_initplan`.
const AUTH_RLS_INITPLAN: OwnRule = OwnRule {
    name: "auth-rls-initplan",
    level: Level::Warning,
};
/// A SECURITY DEFINER function or procedure without SET search_path.
/// `verify` finds the same on a live database: `function_search_path_mutable`.
const FUNCTION_SEARCH_PATH_MUTABLE: OwnRule = OwnRule {
    name: "function-search-path-mutable",
    level: Level::Error,
};
/// INSERT, UPDATE, DELETE, TRUNCATE or ALL on a whole user-data table granted to anon,
/// authenticated or PUBLIC.
const WHOLE_TABLE_WRITE_GRANT: OwnRule = OwnRule {
    name: "whole-table-write-grant",
    level: Level::Warning,
};
/// A permissive policy for anon, authenticated or PUBLIC with USING (true) or WITH CHECK (true) on
/// a user-data table.
/// `verify` finds the same on a live database: `rls_policy_always_true`.
const RLS_POLICY_ALWAYS_TRUE: OwnRule = OwnRule {
    name: "rls-policy-always-true",
    level: Level::Error,
};
/// SELECT on a materialized view granted to anon, authenticated or PUBLIC (RLS does not apply to
/// it).
/// `verify` finds the same on a live database: `materialized_view_in_api`.
const MATERIALIZED_VIEW_IN_API: OwnRule = OwnRule {
    name: "materialized-view-in-api",
    level: Level::Warning,
};
/// A table created in a managed schema without a primary key.
/// `verify` finds the same on a live database: `no_primary_key`.
const NO_PRIMARY_KEY: OwnRule = OwnRule {
    name: "no-primary-key",
    level: Level::Warning,
};

/// Every rule of ours, in README order.
pub const OWN_RULES: [&OwnRule; 7] = [
    &RLS_DISABLED,
    &AUTH_RLS_INITPLAN,
    &FUNCTION_SEARCH_PATH_MUTABLE,
    &WHOLE_TABLE_WRITE_GRANT,
    &RLS_POLICY_ALWAYS_TRUE,
    &MATERIALIZED_VIEW_IN_API,
    &NO_PRIMARY_KEY,
];

/// A finding of one of our rules, at a byte offset of the section.
#[derive(Debug)]
pub struct OwnFinding {
    pub rule: &'static OwnRule,
    pub offset: usize,
    pub message: String,
    pub remedy: String,
}

/// A schema-qualified name as PostgreSQL folds it.
type Name = (Option<String>, String);

/// What the migrations so far created: which tables hold user data (a `user_id`-like or
/// `email` column, or a foreign key to `auth.users` or to another such table), as `verify`
/// decides it from the catalog.
#[derive(Debug)]
pub struct Model {
    user_data: BTreeMap<Name, bool>,
    materialized_views: BTreeSet<Name>,
}

impl Default for Model {
    fn default() -> Model {
        Model {
            user_data: BTreeMap::from([((Some("auth".into()), "users".into()), true)]),
            materialized_views: BTreeSet::new(),
        }
    }
}

impl Model {
    /// Learns the tables one migration creates or gives a user column.
    pub fn learn(&mut self, root: &SyntaxNode) {
        for statement in root.children() {
            match statement.kind() {
                SyntaxKind::CREATE_TABLE => {
                    let Some(name) = child(&statement, SyntaxKind::TABLE_NAME).map(|n| name(&n))
                    else {
                        continue;
                    };
                    let holds =
                        has_user_column(&statement) || self.references_user_data(&statement);
                    self.user_data.insert(name, holds);
                }
                SyntaxKind::CREATE_MATERIALIZED_VIEW => {
                    if let Some(view) = child(&statement, SyntaxKind::VIEW) {
                        self.materialized_views.insert(name(&view));
                    }
                }
                SyntaxKind::ALTER_TABLE => {
                    let Some(name) =
                        first(&statement, SyntaxKind::TABLE_NAME_REF).map(|n| name(&n))
                    else {
                        continue;
                    };
                    if has_user_column(&statement) || self.references_user_data(&statement) {
                        self.user_data.insert(name, true);
                    }
                }
                _ => {}
            }
        }
    }

    fn references_user_data(&self, statement: &SyntaxNode) -> bool {
        statement
            .descendants()
            .filter(|n| {
                matches!(
                    n.kind(),
                    SyntaxKind::REFERENCES_CONSTRAINT | SyntaxKind::FOREIGN_KEY_CONSTRAINT
                )
            })
            .filter_map(|n| child(&n, SyntaxKind::TABLE_NAME_REF))
            .any(|t| self.user_data.get(&name(&t)) == Some(&true))
    }

    /// Some(true) for user data, Some(false) for reference data, None when unknown.
    fn holds_user_data(&self, table: &Name) -> Option<bool> {
        self.user_data.get(table).copied()
    }
}

fn has_user_column(statement: &SyntaxNode) -> bool {
    statement
        .descendants()
        .filter(|n| n.kind() == SyntaxKind::COLUMN)
        .filter_map(|c| child(&c, SyntaxKind::COLUMN_NAME))
        .any(|c| {
            let column = fold(&c.text().to_string());
            matches!(column.as_str(), "user_id" | "owner_id" | "email")
                || column.ends_with("_user_id")
        })
}

/// Our rules over one migration's UP section.
pub fn check(root: &SyntaxNode, model: &Model, managed: &[String]) -> Vec<OwnFinding> {
    let is_managed = |n: &Name| n.0.as_ref().is_some_and(|s| managed.contains(s));
    let mut out = Vec::new();
    let mut rls_enabled = BTreeSet::new();
    let mut keyed = BTreeSet::new();
    for statement in root.children() {
        if statement.kind() == SyntaxKind::ALTER_TABLE {
            if let Some(table) = first(&statement, SyntaxKind::TABLE_NAME_REF).map(|n| name(&n)) {
                if first(&statement, SyntaxKind::ENABLE_RLS).is_some() {
                    rls_enabled.insert(table.clone());
                }
                if has_token(&statement, SyntaxKind::PRIMARY_KW) {
                    keyed.insert(table);
                }
            }
        }
    }
    for statement in root.children() {
        match statement.kind() {
            SyntaxKind::CREATE_TABLE => {
                let Some(table) = child(&statement, SyntaxKind::TABLE_NAME).map(|n| name(&n))
                else {
                    continue;
                };
                if !is_managed(&table) {
                    continue;
                }
                let shown = show(&table);
                if !rls_enabled.contains(&table) {
                    out.push(OwnFinding {
                        rule: &RLS_DISABLED,
                        offset: start(&statement),
                        message: format!(
                            "table {shown} is created without row level security: anon and \
                             authenticated reach every row their grants allow"
                        ),
                        remedy: format!(
                            "add `ALTER TABLE {shown} ENABLE ROW LEVEL SECURITY;` to this migration, with policies"
                        ),
                    });
                }
                let partition = child(&statement, SyntaxKind::PARTITION_OF).is_some();
                if !partition
                    && !has_token(&statement, SyntaxKind::PRIMARY_KW)
                    && !keyed.contains(&table)
                {
                    out.push(OwnFinding {
                        rule: &NO_PRIMARY_KEY,
                        offset: start(&statement),
                        message: format!("table {shown} has no primary key"),
                        remedy: "add a PRIMARY KEY (an identity or uuid id column)".into(),
                    });
                }
            }
            SyntaxKind::CREATE_POLICY | SyntaxKind::ALTER_POLICY => {
                policy(&statement, model, &mut out);
            }
            SyntaxKind::CREATE_FUNCTION | SyntaxKind::CREATE_PROCEDURE => {
                definer(&statement, &mut out);
            }
            SyntaxKind::GRANT => grant(&statement, model, &is_managed, &mut out),
            _ => {}
        }
    }
    out
}

/// Calls PostgreSQL evaluates once per row unless written as `(select auth.uid())`.
const PER_ROW: [&str; 5] = [
    "auth.uid",
    "auth.jwt",
    "auth.role",
    "auth.email",
    "current_setting",
];

const API_ROLES: [&str; 3] = ["anon", "authenticated", "public"];

fn policy(statement: &SyntaxNode, model: &Model, out: &mut Vec<OwnFinding>) {
    let policy_name = statement
        .children()
        .find(|n| matches!(n.kind(), SyntaxKind::POLICY | SyntaxKind::POLICY_REF))
        .map(|n| fold(&n.text().to_string()))
        .unwrap_or_default();
    let clauses: Vec<SyntaxNode> = statement
        .descendants()
        .filter(|n| {
            matches!(
                n.kind(),
                SyntaxKind::USING_EXPR_CLAUSE | SyntaxKind::WITH_CHECK_EXPR_CLAUSE
            )
        })
        .collect();
    for call in clauses
        .iter()
        .flat_map(|c| c.descendants())
        .filter(|n| n.kind() == SyntaxKind::CALL_EXPR)
    {
        let Some(callee) = call.first_child() else {
            continue;
        };
        let callee = fold_path(&callee.text().to_string());
        let wrapped = call
            .parent()
            .is_some_and(|p| p.kind() == SyntaxKind::TARGET);
        if PER_ROW.contains(&callee.as_str()) && !wrapped {
            out.push(OwnFinding {
                rule: &AUTH_RLS_INITPLAN,
                offset: start(&call),
                message: format!("policy \"{policy_name}\" calls {callee}() once per row"),
                remedy: format!(
                    "wrap the call in a sub-select so it runs once per query: (select {callee}())"
                ),
            });
        }
    }
    if statement.kind() != SyntaxKind::CREATE_POLICY {
        return;
    }
    let restrictive = child(statement, SyntaxKind::AS_POLICY_TYPE).is_some_and(|t| {
        t.text()
            .to_string()
            .to_ascii_lowercase()
            .contains("restrictive")
    });
    let roles: Vec<String> = child(statement, SyntaxKind::POLICY_ROLES)
        .map(|r| role_names(&r))
        .unwrap_or_else(|| vec!["public".into()]);
    let Some(table) = child(statement, SyntaxKind::ON_TABLE)
        .and_then(|t| first(&t, SyntaxKind::TABLE_NAME_REF))
        .map(|n| name(&n))
    else {
        return;
    };
    if restrictive
        || !roles.iter().any(|r| API_ROLES.contains(&r.as_str()))
        || model.holds_user_data(&table) != Some(true)
    {
        return;
    }
    let command = child(statement, SyntaxKind::POLICY_COMMAND)
        .map(|c| {
            c.text()
                .to_string()
                .to_ascii_uppercase()
                .trim_start_matches("FOR")
                .trim()
                .to_string()
        })
        .unwrap_or_else(|| "ALL".into());
    for clause in &clauses {
        let is_using = clause.kind() == SyntaxKind::USING_EXPR_CLAUSE;
        let counts = if is_using {
            command != "INSERT"
        } else {
            matches!(command.as_str(), "INSERT" | "UPDATE" | "ALL")
        };
        if counts && is_true_literal(clause) {
            let which = if is_using {
                "USING (true)"
            } else {
                "WITH CHECK (true)"
            };
            out.push(OwnFinding {
                rule: &RLS_POLICY_ALWAYS_TRUE,
                offset: start(clause),
                message: format!(
                    "policy \"{policy_name}\" (FOR {command} TO {}) on user-data table {} allows every row: {which}",
                    roles.join(", "),
                    show(&table)
                ),
                remedy: "restrict it to the caller's rows, e.g. USING (user_id = (select auth.uid()))"
                    .into(),
            });
        }
    }
}

/// Whether a USING / WITH CHECK clause is the constant `true`, in any number of parentheses.
fn is_true_literal(clause: &SyntaxNode) -> bool {
    let mut expr = clause.children().next();
    while let Some(e) = &expr {
        if e.kind() != SyntaxKind::PAREN_EXPR {
            break;
        }
        expr = e.children().next();
    }
    expr.is_some_and(|e| {
        e.kind() == SyntaxKind::LITERAL && e.text().to_string().eq_ignore_ascii_case("true")
    })
}

fn definer(statement: &SyntaxNode, out: &mut Vec<OwnFinding>) {
    let Some(options) = child(statement, SyntaxKind::FUNC_OPTION_LIST) else {
        return;
    };
    let is_definer = options
        .children()
        .any(|o| o.kind() == SyntaxKind::SECURITY_DEFINER_FUNC_OPTION);
    let fixes_path = options
        .children()
        .filter(|o| o.kind() == SyntaxKind::SET_FUNC_OPTION)
        .filter_map(|o| first(&o, SyntaxKind::CONFIG_PARAMETER_REF))
        .any(|p| fold(&p.text().to_string()) == "search_path");
    if !is_definer || fixes_path {
        return;
    }
    let function = child(statement, SyntaxKind::FUNCTION_NAME)
        .or_else(|| first(statement, SyntaxKind::PATH))
        .map(|n| show(&name(&n)))
        .unwrap_or_else(|| "this function".into());
    out.push(OwnFinding {
        rule: &FUNCTION_SEARCH_PATH_MUTABLE,
        offset: start(statement),
        message: format!(
            "SECURITY DEFINER {function} has no fixed search_path: a caller's objects can shadow \
             the ones it uses, with the owner's rights"
        ),
        remedy: "add `SET search_path = ''` and schema-qualify every name in its body".into(),
    });
}

fn grant(
    statement: &SyntaxNode,
    model: &Model,
    is_managed: &dyn Fn(&Name) -> bool,
    out: &mut Vec<OwnFinding>,
) {
    let roles: Vec<String> = child(statement, SyntaxKind::ROLE_REF_LIST)
        .map(|r| role_names(&r))
        .unwrap_or_default();
    let api: Vec<&String> = roles
        .iter()
        .filter(|r| API_ROLES.contains(&r.as_str()))
        .collect();
    if api.is_empty() {
        return;
    }
    matview_grant(statement, model, &api, out);
    let mut writes = Vec::new();
    for privilege in statement.children() {
        match privilege.kind() {
            SyntaxKind::ALL_PRIVILEGES
                if first(&privilege, SyntaxKind::COLUMN_REF_LIST).is_none() =>
            {
                writes.push("ALL".to_string())
            }
            SyntaxKind::REVOKE_COMMAND_LIST => {
                for command in privilege
                    .children()
                    .filter(|c| c.kind() == SyntaxKind::REVOKE_COMMAND)
                    .filter(|c| child(c, SyntaxKind::COLUMN_REF_LIST).is_none())
                {
                    let word = command.text().to_string().trim().to_ascii_uppercase();
                    if matches!(
                        word.as_str(),
                        "INSERT" | "UPDATE" | "DELETE" | "TRUNCATE" | "ALL"
                    ) {
                        writes.push(word);
                    }
                }
            }
            _ => {}
        }
    }
    if writes.is_empty() {
        return;
    }
    let Some(objects) = child(statement, SyntaxKind::ON_PRIVILEGE_OBJECTS_CLAUSE) else {
        return;
    };
    let mut targets = Vec::new();
    for object in objects.children() {
        match object.kind() {
            SyntaxKind::PRIVILEGE_DEFAULT | SyntaxKind::PRIVILEGE_TABLE => {
                for table in object
                    .children()
                    .filter(|t| t.kind() == SyntaxKind::RELATION_NAME_REF)
                    .map(|t| name(&t))
                {
                    let user_data = match model.holds_user_data(&table) {
                        Some(known) => known,
                        None => is_managed(&table),
                    };
                    if user_data {
                        targets.push(show(&table));
                    }
                }
            }
            SyntaxKind::PRIVILEGE_ALL_TABLES_IN_SCHEMA => {
                for schema in object
                    .children()
                    .filter(|s| s.kind() == SyntaxKind::SCHEMA_REF)
                    .map(|s| fold(&s.text().to_string()))
                {
                    if is_managed(&(Some(schema.clone()), String::new())) {
                        targets.push(format!("ALL TABLES IN SCHEMA {schema}"));
                    }
                }
            }
            _ => {}
        }
    }
    if targets.is_empty() {
        return;
    }
    let roles = api
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    out.push(OwnFinding {
        rule: &WHOLE_TABLE_WRITE_GRANT,
        offset: start(statement),
        message: format!(
            "{} on every column of user-data {} granted to {roles}: only RLS stands between a \
             caller and every column of their rows",
            writes.join(", "),
            targets.join(", ")
        ),
        remedy: "grant INSERT/UPDATE on a column list, e.g. GRANT UPDATE (display_name) ON ... TO authenticated"
            .into(),
    });
}

/// SELECT (or ALL) on a materialized view to an API role: RLS does not apply to it.
fn matview_grant(
    statement: &SyntaxNode,
    model: &Model,
    api: &[&String],
    out: &mut Vec<OwnFinding>,
) {
    let reads = statement.children().any(|p| match p.kind() {
        SyntaxKind::ALL_PRIVILEGES => true,
        SyntaxKind::REVOKE_COMMAND_LIST => p.children().any(|c| {
            matches!(
                c.text().to_string().trim().to_ascii_uppercase().as_str(),
                "SELECT" | "ALL"
            )
        }),
        _ => false,
    });
    if !reads {
        return;
    }
    let views: Vec<String> = child(statement, SyntaxKind::ON_PRIVILEGE_OBJECTS_CLAUSE)
        .into_iter()
        .flat_map(|o| o.descendants())
        .filter(|n| n.kind() == SyntaxKind::RELATION_NAME_REF)
        .map(|n| name(&n))
        .filter(|n| model.materialized_views.contains(n))
        .map(|n| show(&n))
        .collect();
    if views.is_empty() {
        return;
    }
    let roles = api
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    out.push(OwnFinding {
        rule: &MATERIALIZED_VIEW_IN_API,
        offset: start(statement),
        message: format!(
            "materialized view {} is readable by {roles}: row level security does not apply to it",
            views.join(", ")
        ),
        remedy: "grant it to service_role only and serve rows through a SECURITY DEFINER function that filters on (select auth.uid())"
            .into(),
    });
}

fn role_names(list: &SyntaxNode) -> Vec<String> {
    list.descendants()
        .filter(|n| n.kind() == SyntaxKind::ROLE_REF)
        .map(|r| fold(&r.text().to_string()))
        .collect()
}

/// The first direct child of `kind`.
fn child(node: &SyntaxNode, kind: SyntaxKind) -> Option<SyntaxNode> {
    node.children().find(|c| c.kind() == kind)
}

/// The first descendant of `kind`.
fn first(node: &SyntaxNode, kind: SyntaxKind) -> Option<SyntaxNode> {
    node.descendants().find(|c| c.kind() == kind)
}

fn has_token(node: &SyntaxNode, kind: SyntaxKind) -> bool {
    node.descendants_with_tokens().any(|t| t.kind() == kind)
}

/// Where a node's first non-trivia token starts (leading comments belong to the node).
fn start(node: &SyntaxNode) -> usize {
    node.descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .find(|t| !t.kind().is_trivia())
        .map_or_else(
            || usize::from(node.text_range().start()),
            |t| usize::from(t.text_range().start()),
        )
}

/// `schema.name` from a name node, folded as PostgreSQL folds identifiers.
fn name(node: &SyntaxNode) -> Name {
    let text: String = node
        .descendants_with_tokens()
        .filter_map(|e| e.into_token())
        .filter(|t| !t.kind().is_trivia())
        .map(|t| t.text().to_string())
        .collect();
    let mut parts: Vec<String> = split_dots(&text).iter().map(|p| fold(p)).collect();
    let last = parts.pop().unwrap_or_default();
    (parts.pop(), last)
}

fn show(name: &Name) -> String {
    match &name.0 {
        Some(schema) => format!("{schema}.{}", name.1),
        None => name.1.clone(),
    }
}

/// A dotted call target such as `auth.uid` or `pg_catalog.current_setting`, folded, without
/// a `pg_catalog.` prefix.
fn fold_path(text: &str) -> String {
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let folded: Vec<String> = split_dots(&compact).iter().map(|p| fold(p)).collect();
    let joined = folded.join(".");
    joined
        .strip_prefix("pg_catalog.")
        .map(str::to_string)
        .unwrap_or(joined)
}

/// Splits on dots outside double quotes.
fn split_dots(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut from = 0;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => {
                parts.push(&text[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[from..]);
    parts
}

/// An identifier as PostgreSQL folds it: quoted keeps its case, bare is lowercased.
fn fold(ident: &str) -> String {
    let ident = ident.trim();
    match ident.strip_prefix('"').and_then(|i| i.strip_suffix('"')) {
        Some(quoted) => quoted.replace("\"\"", "\""),
        None => ident.to_ascii_lowercase(),
    }
}

/// Whether the `CREATE INDEX` at `offset` is on a materialized view or `CREATE TABLE AS`
/// table created earlier in the same migration. squawk only knows `CREATE TABLE` as new, but
/// an index on any relation this migration created blocks nobody: no one uses it yet.
pub fn index_on_new_relation(root: &SyntaxNode, offset: usize) -> bool {
    let mut created = BTreeSet::new();
    for statement in root.children() {
        let range = statement.text_range();
        if usize::from(range.end()) <= offset {
            let name_node = match statement.kind() {
                SyntaxKind::CREATE_MATERIALIZED_VIEW => child(&statement, SyntaxKind::VIEW),
                SyntaxKind::CREATE_TABLE_AS => child(&statement, SyntaxKind::TABLE_NAME),
                _ => None,
            };
            if let Some(n) = name_node {
                created.insert(name(&n));
            }
            continue;
        }
        if usize::from(range.start()) > offset {
            break;
        }
        return statement.kind() == SyntaxKind::CREATE_INDEX
            && child(&statement, SyntaxKind::TABLE_RELATION_NAME)
                .is_some_and(|t| created.contains(&name(&t)));
    }
    false
}

/// The `CONCURRENTLY` of a section whose only statement is `CREATE INDEX CONCURRENTLY`.
/// squawk assumes such a file may run outside a transaction; our runner wraps every
/// migration without `-- transaction: none` in one, where PostgreSQL refuses it.
pub fn lone_concurrent_index(root: &SyntaxNode) -> Option<usize> {
    let mut statements = root.children();
    let only = statements.next()?;
    if statements.next().is_some() || only.kind() != SyntaxKind::CREATE_INDEX {
        return None;
    }
    only.children_with_tokens()
        .filter_map(|e| e.into_token())
        .find(|t| t.kind() == SyntaxKind::CONCURRENTLY_KW)
        .map(|t| usize::from(t.text_range().start()))
}
