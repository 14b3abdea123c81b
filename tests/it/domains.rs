//! The repository's own migrations, all five domains: clean round trips, stepwise reversal,
//! a Supabase-shaped `auth` left as it was, RLS behaviour per domain, and the objects and
//! rules the documents and the issue require.

use std::fs;

use postgres::GenericClient;

use crate::support::{repo, rolled_back_with_rls_helpers, with_credentials, Project};

const DOMAINS: [&str; 5] = ["coach", "wellness", "partner", "signify", "counsel"];

/// The versions of the repository's migration files, in order.
fn versions() -> Vec<i64> {
    let mut versions: Vec<i64> = fs::read_dir(repo().join("migrations"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .map(|name| {
            let digits = name.split('_').next().unwrap();
            digits
                .parse()
                .unwrap_or_else(|e| panic!("{name}: version: {e}"))
        })
        .collect();
    versions.sort_unstable();
    versions
}

fn fixture(relative: &str) -> String {
    let path = repo().join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A project with the repository's migrations, migrated to head.
fn at_head(label: &str) -> Project {
    let p = Project::with_repo_migrations(label);
    p.migrate(&["up"]).success();
    assert_eq!(p.applied(), versions());
    p
}

/// Asserts two schema dumps are identical; on failure shows the first differing lines
/// rather than two whole dumps.
#[track_caller]
fn assert_same_schema(expected: &str, actual: &str, context: &str) {
    if expected == actual {
        return;
    }
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let first = e
        .iter()
        .zip(&a)
        .position(|(x, y)| x != y)
        .unwrap_or(e.len().min(a.len()));
    let from = first.saturating_sub(3);
    let show =
        |lines: &[&str]| lines[from.min(lines.len())..(first + 8).min(lines.len())].join("\n");
    panic!(
        "{context}: schema dumps differ from line {} ({} vs {} lines)\n--- expected\n{}\n--- actual\n{}",
        first + 1,
        e.len(),
        a.len(),
        show(&e),
        show(&a)
    );
}

/// The server's message of a failed statement (the ASSERT text of the RLS scripts).
fn db_message(e: &postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

#[test]
fn up_on_empty_database_then_down_all_restores_the_schema() {
    let p = Project::with_repo_migrations("domains_round_trip");
    let before = p.db.dump();
    p.migrate(&["up"]).success();
    assert_eq!(p.applied(), versions());
    let tables: i64 = p.db.scalar(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind = 'r'
           AND n.nspname IN ('coach', 'wellness', 'partner', 'signify', 'counsel')",
    );
    assert_eq!(tables, 32, "tables in the five domain schemas");
    p.migrate(&["down", "--all"]).success();
    assert!(p.applied().is_empty());
    assert_same_schema(&before, &p.db.dump(), "after up and down --all");
    p.migrate(&["up"]).success();
    assert_eq!(p.applied(), versions());
}

/// For every version V, `down` one step from V leaves the schema `up --to <previous>` left.
#[test]
fn each_down_step_undoes_exactly_its_up() {
    let p = Project::with_repo_migrations("domains_stepwise");
    let versions = versions();
    // dumps[i]: the schema with the first i migrations applied
    let mut dumps = vec![p.db.dump()];
    for v in &versions {
        p.migrate(&["up", "--to", &v.to_string()]).success();
        dumps.push(p.db.dump());
    }
    for i in (1..=versions.len()).rev() {
        p.migrate(&["down"]).success();
        assert_eq!(p.applied(), versions[..i - 1]);
        let previous = if i >= 2 {
            format!("up --to {}", versions[i - 2])
        } else {
            "the empty database".to_string()
        };
        assert_same_schema(
            &dumps[i - 1],
            &p.db.dump(),
            &format!("down from {} vs {previous}", versions[i - 1]),
        );
    }
    assert!(
        dumps.windows(2).all(|w| w[0] != w[1]),
        "every migration changes the schema"
    );
}

#[test]
fn supabase_auth_is_left_exactly_as_it_was() {
    let p = Project::with_repo_migrations("domains_supabase");
    p.db.execute(&fixture("tests/fixtures/supabase_auth.sql"));
    let before = p.db.dump();

    p.migrate(&["up"]).success();
    assert_eq!(p.applied(), versions());
    // Supabase's auth.users (is_sso_user is its column, not ours) is the one the domains use
    let foreign_keys: i64 = p.db.scalar(
        "SELECT count(*) FROM pg_constraint
         WHERE contype = 'f' AND confrelid = 'auth.users'::regclass",
    );
    // seven tables' owners, and partner.message_suggestions.author_id (0057)
    assert_eq!(foreign_keys, 8, "domain foreign keys to auth.users");
    let marker: Option<String> =
        p.db.scalar("SELECT obj_description('auth'::regnamespace, 'pg_namespace')");
    assert_eq!(
        marker, None,
        "0001 must not mark a schema auth it did not create"
    );
    p.db.execute(
        "INSERT INTO auth.users (id, email) VALUES ('5ab00000-0000-4000-8000-000000000001', 's@example.com');
         INSERT INTO coach.users (id, email) VALUES ('5ab00000-0000-4000-8000-000000000001', 's@example.com');
         DELETE FROM auth.users WHERE id = '5ab00000-0000-4000-8000-000000000001';",
    );
    let left: i64 = p.db.scalar("SELECT count(*) FROM coach.users");
    assert_eq!(
        left, 0,
        "deleting the auth user cascades to its coach profile"
    );

    // Supabase's own auth.uid() drives the policies exactly as ours does
    let mut client = p.db.client();
    for domain in DOMAINS {
        rolled_back_with_rls_helpers(
            &mut client,
            &fixture(&format!("tests/sql/rls_{domain}.sql")),
        )
        .unwrap_or_else(|e| panic!("rls_{domain}.sql on Supabase's auth: {}", db_message(&e)));
    }

    p.migrate(&["down", "--all"]).success();
    assert_same_schema(
        &before,
        &p.db.dump(),
        "Supabase database after up and down --all",
    );
    p.migrate(&["up"]).success();
    assert_eq!(p.applied(), versions());
}

/// On hosted Supabase the migration role is no superuser and does not own `extensions`. A
/// role that owns the database and holds exactly the privileges the README lists ("Hosted
/// Supabase: the migration role") migrates up, its triggers serve clients, and it migrates
/// down again.
#[test]
fn a_database_owner_with_the_listed_privileges_migrates_supabase() {
    let p = Project::with_repo_migrations("domains_hosted");
    p.db.execute(&fixture("tests/fixtures/supabase_auth.sql"));
    let role = format!("migrator_{}", std::process::id());
    let database: String = p.db.scalar("SELECT current_database()");
    p.db.execute(&format!(
        "DO $$ BEGIN CREATE ROLE {role} LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         ALTER ROLE {role} PASSWORD 'migrator-pw';
         ALTER DATABASE \"{database}\" OWNER TO {role};
         GRANT USAGE ON SCHEMA auth, extensions TO {role};
         GRANT REFERENCES (id) ON auth.users TO {role};"
    ));
    // With a password, for a TEST_DATABASE_URL server that does not trust loopback.
    let url = with_credentials(&p.db.url, &role, Some("migrator-pw"));
    let before = p.db.dump();

    p.migrate_raw(&["up", "--database-url", &url], &[])
        .success();
    assert_eq!(p.applied(), versions());
    let superuser: bool = p.db.scalar(&format!(
        "SELECT rolsuper FROM pg_roles WHERE rolname = '{role}'"
    ));
    assert!(!superuser);

    // counsel's trigger fills a new profile's email from the client's token
    p.db.execute(
        "INSERT INTO auth.users (id, email) VALUES ('4057e000-0000-4000-8000-000000000001', 'hosted@example.com');",
    );
    let mut client = p.db.client();
    let mut tx = client.transaction().unwrap();
    tx.batch_execute(
        r#"SELECT set_config('request.jwt.claims',
               '{"sub":"4057e000-0000-4000-8000-000000000001","role":"authenticated",
                 "email":"hosted@example.com"}', true);
           SET LOCAL ROLE authenticated;
           INSERT INTO counsel.users (id, full_name)
               VALUES ('4057e000-0000-4000-8000-000000000001', 'Hosted');"#,
    )
    .unwrap_or_else(|e| panic!("counsel profile as a client: {}", db_message(&e)));
    let email: String = tx
        .query_one("SELECT email::text FROM counsel.users", &[])
        .unwrap()
        .get(0);
    assert_eq!(email, "hosted@example.com");
    tx.rollback().unwrap();
    p.db.execute("DELETE FROM auth.users WHERE id = '4057e000-0000-4000-8000-000000000001';");

    p.migrate_raw(&["down", "--all", "--database-url", &url], &[])
        .success();
    assert_same_schema(
        &before,
        &p.db.dump(),
        "after up and down --all as the migration role",
    );
    // roles are cluster-wide: leave none behind on a shared TEST_DATABASE_URL server
    p.db.execute(&format!(
        "ALTER DATABASE \"{database}\" OWNER TO CURRENT_USER;
         REASSIGN OWNED BY {role} TO CURRENT_USER; DROP OWNED BY {role}; DROP ROLE {role};"
    ));
}

/// Runs `tests/sql/rls_<domain>.sql` at head (it raises on a wrong count), then again after
/// `leak` has replaced one policy with a permissive one: the script must now fail on `table`,
/// so it cannot pass vacuously.
fn rls(domain: &str, leak: &str, table: &str) {
    let p = at_head(&format!("rls_{domain}"));
    let script = fixture(&format!("tests/sql/rls_{domain}.sql"));
    let mut client = p.db.client();
    rolled_back_with_rls_helpers(&mut client, &script)
        .unwrap_or_else(|e| panic!("rls_{domain}.sql: {}", db_message(&e)));

    let error = rolled_back_with_rls_helpers(&mut client, &format!("{leak}\n{script}"))
        .expect_err("the script must fail once a policy lets every signed-in user through");
    let message = db_message(&error);
    assert!(
        message.contains(table),
        "the failure should name {table}: {message}"
    );

    // both runs were rolled back: no rows, the original policies
    let users: i64 = p.db.scalar("SELECT count(*) FROM auth.users");
    assert_eq!(users, 0);
    let open: i64 =
        p.db.scalar("SELECT count(*) FROM pg_policies WHERE qual = 'true' OR with_check = 'true'");
    assert_eq!(open, 0);
}

#[test]
fn rls_coach() {
    rls(
        "coach",
        r#"DROP POLICY "Users can view their own conversations" ON coach.conversations;
           CREATE POLICY leak ON coach.conversations FOR SELECT TO authenticated USING (true);"#,
        "coach.conversations",
    );
}

#[test]
fn rls_wellness() {
    rls(
        "wellness",
        r#"DROP POLICY "Users can read own wellness" ON wellness.wellness_entries;
           CREATE POLICY leak ON wellness.wellness_entries FOR SELECT TO authenticated USING (true);"#,
        "wellness.wellness_entries",
    );
}

#[test]
fn rls_partner() {
    rls(
        "partner",
        r#"DROP POLICY "Senders can only access their own message suggestions" ON partner.message_suggestions;
           CREATE POLICY leak ON partner.message_suggestions FOR ALL TO authenticated
               USING (true) WITH CHECK (true);"#,
        "partner.message_suggestions",
    );
}

#[test]
fn rls_signify() {
    rls(
        "signify",
        "DROP POLICY chat_sessions_owner ON signify.chat_sessions;
         CREATE POLICY leak ON signify.chat_sessions FOR ALL TO authenticated
             USING (true) WITH CHECK (true);",
        "signify.chat_sessions",
    );
}

#[test]
fn rls_counsel() {
    rls(
        "counsel",
        "DROP POLICY coaching_conversations_select_own ON counsel.coaching_conversations;
         CREATE POLICY leak ON counsel.coaching_conversations FOR SELECT TO authenticated
             USING (true);",
        "counsel.coaching_conversations",
    );
}

/// Policies whose USING made `true` no script can notice, and why.
const USING_UNSEEN: &[(&str, &str)] = &[(
    "partner.partner_messages",
    // Every client UPDATE of a message is limited further by its trigger (receipts by the
    // recipient, soft delete by the sender), so no UPDATE without WHERE has a fixed count.
    "Members update the messages they can see",
)];

/// Mutations this catches: any one client policy of the five domains weakened, its WITH CHECK
/// or its USING made `true` (issue 16: counsel's WITH CHECK could be weakened so that a user
/// gives its row to another user, and no check saw it behind the column grants). Each domain's
/// RLS script must fail for each such policy, so no policy is tested only by luck.
#[test]
fn every_weakened_policy_fails_its_domains_rls_script() {
    let p = at_head("rls_weakened");
    let mut client = p.db.client();
    let mut unseen = Vec::new();
    let mut tried = 0;
    for domain in DOMAINS {
        let script = fixture(&format!("tests/sql/rls_{domain}.sql"));
        let policies: Vec<(String, String, String)> = client
            .query(
                "SELECT tablename::text, policyname::text, cmd FROM pg_policies
                 WHERE schemaname = $1 AND roles && '{authenticated,anon,public}'::name[]
                 ORDER BY 1, 2",
                &[&domain],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        assert!(!policies.is_empty(), "{domain} has client policies");
        for (table, policy, cmd) in policies {
            let mut weakenings = Vec::new();
            if cmd != "INSERT" {
                weakenings.push("USING (true)");
            }
            if matches!(cmd.as_str(), "INSERT" | "UPDATE" | "ALL") {
                weakenings.push("WITH CHECK (true)");
            }
            let name = format!("{domain}.{table}");
            for weakening in weakenings {
                if weakening.starts_with("USING") && USING_UNSEEN.contains(&(&name, &policy)) {
                    continue;
                }
                tried += 1;
                let alter = format!(
                    "ALTER POLICY \"{}\" ON {domain}.{table} {weakening};",
                    policy.replace('"', "\"\"")
                );
                if rolled_back_with_rls_helpers(&mut client, &format!("{alter}\n{script}")).is_ok()
                {
                    unseen.push(format!("{name} \"{policy}\" {weakening}"));
                }
            }
        }
    }
    assert!(tried > 50, "only {tried} weakenings tried");
    assert!(
        unseen.is_empty(),
        "the RLS scripts pass with these policies weakened:\n{}",
        unseen.join("\n")
    );
}

/// Before `0055`–`0059` (issue 11) clients could write what the documents give the backend:
/// every domain's RLS script must fail on the migrations up to `0054`, naming its domain.
#[test]
fn rls_scripts_refuse_the_writes_clients_had_before_0055() {
    let p = Project::with_repo_migrations("rls_before_0055");
    p.migrate(&["up", "--to", "54"]).success();
    let mut client = p.db.client();
    for domain in DOMAINS {
        let error = rolled_back_with_rls_helpers(
            &mut client,
            &fixture(&format!("tests/sql/rls_{domain}.sql")),
        )
        .expect_err("the client-write checks must fail before 0055");
        let message = db_message(&error);
        assert!(
            message.contains(domain),
            "rls_{domain}.sql before 0055 should fail on a {domain} check: {message}"
        );
    }
}

/// One line of `tests/fixtures/objects_<domain>.txt`: a kind and a dotted name.
struct Named {
    kind: String,
    name: String,
    line: String,
}

fn named_objects(domain: &str) -> Vec<Named> {
    let file = format!("tests/fixtures/objects_{domain}.txt");
    fixture(&file)
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(n, l)| {
            let (kind, name) = l
                .split_once(' ')
                .unwrap_or_else(|| panic!("{file}:{n}: expected `<kind> <name>`: {l}"));
            let parts = name.split('.').count();
            let expected_parts = match kind {
                "table" | "index" | "function" | "view" => 2,
                "policy" | "trigger" => 3,
                _ => panic!("{file}:{n}: unknown kind `{kind}`"),
            };
            // policy names may hold dots only after schema and table
            assert!(
                parts >= expected_parts && (expected_parts == 3 || parts == 2),
                "{file}:{n}: `{name}` is not a {kind} name"
            );
            Named {
                kind: kind.to_string(),
                name: name.to_string(),
                line: format!("{file}:{n}: {l}"),
            }
        })
        .collect()
}

const RELATION_KINDS: &str =
    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind::text = ANY($3)";
const FUNCTION_EXISTS: &str =
    "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = $1 AND p.proname = $2";
const POLICY_EXISTS: &str =
    "SELECT count(*) FROM pg_policies WHERE schemaname = $1 AND tablename = $2 AND policyname = $3";
const TRIGGER_EXISTS: &str = "SELECT count(*) FROM pg_trigger t
     JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relname = $2 AND t.tgname = $3 AND NOT t.tgisinternal";

/// The lines of `objects` that name nothing in the database.
fn missing(client: &mut impl GenericClient, objects: &[Named]) -> Vec<String> {
    objects
        .iter()
        .filter(|o| {
            let parts: Vec<&str> = o.name.splitn(3, '.').collect();
            let found: i64 = match o.kind.as_str() {
                "table" | "index" | "view" => {
                    let kinds: Vec<String> = match o.kind.as_str() {
                        "table" => vec!["r".into(), "p".into()],
                        "index" => vec!["i".into()],
                        _ => vec!["v".into(), "m".into()],
                    };
                    client
                        .query_one(RELATION_KINDS, &[&parts[0], &parts[1], &kinds])
                        .unwrap()
                        .get(0)
                }
                "function" => client
                    .query_one(FUNCTION_EXISTS, &[&parts[0], &parts[1]])
                    .unwrap()
                    .get(0),
                "policy" => client
                    .query_one(POLICY_EXISTS, &[&parts[0], &parts[1], &parts[2]])
                    .unwrap()
                    .get(0),
                _ => client
                    .query_one(TRIGGER_EXISTS, &[&parts[0], &parts[1], &parts[2]])
                    .unwrap()
                    .get(0),
            };
            found == 0
        })
        .map(|o| o.line.clone())
        .collect()
}

#[test]
fn every_object_the_documents_name_exists() {
    let p = at_head("domains_objects");
    let mut client = p.db.client();
    for domain in DOMAINS {
        let objects = named_objects(domain);
        for kind in ["table", "index"] {
            assert!(
                objects.iter().any(|o| o.kind == kind),
                "objects_{domain}.txt lists no {kind}"
            );
        }
        assert_eq!(missing(&mut client, &objects), Vec::<String>::new());
    }
    // the lookup reports what is absent (and does not take an index for a table)
    let absent = [
        ("table", "coach.idx_conversations_user_id_created_at"),
        ("view", "signify.users"),
        ("policy", "coach.users.nobody"),
        ("trigger", "coach.users.nothing"),
        ("function", "coach.nothing"),
    ]
    .map(|(kind, name)| Named {
        kind: kind.into(),
        name: name.into(),
        line: name.into(),
    });
    assert_eq!(missing(&mut client, &absent).len(), absent.len());
}

// ---------------------------------------------------------------------------------------
// Rules for every domain schema. Each query lists the objects that break its rule.

/// Tables (and partitions) without row level security.
const TABLES_WITHOUT_RLS: &str = "SELECT c.oid::regclass::text FROM pg_class c
     JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity
     ORDER BY 1";

/// Foreign keys with no non-partial index whose leading columns are the key's columns.
const FOREIGN_KEYS_WITHOUT_INDEX: &str = "SELECT c.conrelid::regclass::text || '.' || c.conname
     FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
     WHERE c.contype = 'f' AND n.nspname = ANY($1)
       AND NOT EXISTS (
           SELECT 1 FROM pg_index i,
                LATERAL (SELECT (string_to_array(i.indkey::text, ' ')::int2[])
                                [1:pg_catalog.cardinality(c.conkey)] AS lead) k
           WHERE i.indrelid = c.conrelid AND i.indpred IS NULL
             AND k.lead @> c.conkey AND k.lead <@ c.conkey)
     ORDER BY 1";

/// Policies and their expressions, for the roles clients use.
const CLIENT_POLICIES: &str = "SELECT schemaname || '.' || tablename || '.' || policyname,
            coalesce(qual, ''), coalesce(with_check, '')
     FROM pg_policies
     WHERE schemaname = ANY($1) AND roles && ARRAY['anon', 'authenticated', 'public']::name[]
     ORDER BY 1";

/// Policies not restricted to a role (`TO public`, the default).
const POLICIES_FOR_PUBLIC: &str = "SELECT schemaname || '.' || tablename || '.' || policyname
     FROM pg_policies WHERE schemaname = ANY($1) AND 'public' = ANY(roles) ORDER BY 1";

/// Functions without a fixed search_path; SECURITY DEFINER ones need it empty.
const FUNCTIONS_WITHOUT_SEARCH_PATH: &str = "SELECT p.oid::regprocedure::text FROM pg_proc p
     JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = ANY($1) AND p.prokind IN ('f', 'p')
       AND NOT EXISTS (
           SELECT 1 FROM unnest(p.proconfig) s
           WHERE CASE WHEN p.prosecdef THEN s = 'search_path=\"\"'
                      ELSE s LIKE 'search_path=%' END)
     ORDER BY 1";

/// SECURITY DEFINER functions that `anon` may execute.
const DEFINERS_FOR_ANON: &str = "SELECT p.oid::regprocedure::text FROM pg_proc p
     JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = ANY($1) AND p.prosecdef AND p.prorettype <> 'trigger'::regtype
       AND has_function_privilege('anon', p.oid, 'EXECUTE')
     ORDER BY 1";

/// Tables and views `anon` may read or write.
const RELATIONS_FOR_ANON: &str = "SELECT c.oid::regclass::text FROM pg_class c
     JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm')
       AND has_table_privilege('anon', c.oid, 'SELECT,INSERT,UPDATE,DELETE')
     ORDER BY 1";

/// Tables with an `updated_at` column but no BEFORE UPDATE row trigger that sets it.
const UPDATED_AT_WITHOUT_TRIGGER: &str = "SELECT c.oid::regclass::text FROM pg_class c
     JOIN pg_namespace n ON n.oid = c.relnamespace
     JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'updated_at' AND NOT a.attisdropped
     WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p')
       AND NOT EXISTS (
           SELECT 1 FROM pg_trigger t JOIN pg_proc f ON f.oid = t.tgfoid
           WHERE t.tgrelid = c.oid AND NOT t.tgisinternal
             AND t.tgtype & 19 = 19  -- ROW (1) | BEFORE (2) | UPDATE (16)
             AND f.prosrc ILIKE '%NEW.updated_at%')
     ORDER BY 1";

fn names(client: &mut impl GenericClient, sql: &str) -> Vec<String> {
    let schemas: Vec<&str> = DOMAINS.to_vec();
    client
        .query(sql, &[&schemas])
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Each `auth.uid()` in a policy expression must be the sub-select PostgreSQL evaluates
/// once per query: `pg_get_expr` renders `(select auth.uid())` as `( SELECT auth.uid() AS uid)`.
fn calls_bare_uid(expression: &str) -> bool {
    expression
        .match_indices("auth.uid()")
        .any(|(at, _)| !expression[..at].ends_with("SELECT "))
}

/// Client policies calling `auth.uid()` per row, and client policies open to every row.
fn policy_violations(client: &mut impl GenericClient) -> (Vec<String>, Vec<String>) {
    let schemas: Vec<&str> = DOMAINS.to_vec();
    let (mut bare, mut open) = (Vec::new(), Vec::new());
    for row in client.query(CLIENT_POLICIES, &[&schemas]).unwrap() {
        let (name, qual, check): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        if calls_bare_uid(&qual) || calls_bare_uid(&check) {
            bare.push(name.clone());
        }
        if qual == "true" || check == "true" {
            open.push(name);
        }
    }
    (bare, open)
}

#[test]
fn domain_schemas_follow_the_rules() {
    let p = at_head("domains_rules");
    let mut client = p.db.client();
    let none = Vec::<String>::new();
    assert_eq!(
        names(&mut client, TABLES_WITHOUT_RLS),
        none,
        "tables without RLS"
    );
    assert_eq!(
        names(&mut client, FOREIGN_KEYS_WITHOUT_INDEX),
        none,
        "foreign keys without a covering index"
    );
    assert_eq!(
        names(&mut client, POLICIES_FOR_PUBLIC),
        none,
        "policies TO public"
    );
    assert_eq!(
        policy_violations(&mut client),
        (none.clone(), none.clone()),
        "policies calling bare auth.uid(), policies USING (true)"
    );
    assert_eq!(
        names(&mut client, FUNCTIONS_WITHOUT_SEARCH_PATH),
        none,
        "functions without a fixed search_path"
    );
    assert_eq!(
        names(&mut client, DEFINERS_FOR_ANON),
        none,
        "SECURITY DEFINER for anon"
    );
    assert_eq!(
        names(&mut client, RELATIONS_FOR_ANON),
        none,
        "relations anon can reach"
    );
    assert_eq!(
        names(&mut client, UPDATED_AT_WITHOUT_TRIGGER),
        none,
        "updated_at without a trigger"
    );
    // the checks above looked at something
    let policies: i64 = p.db.scalar(
        "SELECT count(*) FROM pg_policies
         WHERE schemaname IN ('coach', 'wellness', 'partner', 'signify', 'counsel')",
    );
    assert!(policies >= 60, "{policies} policies");
}

/// The rule queries find a planted violation of each rule (so an empty answer means something).
#[test]
fn domain_rules_catch_violations() {
    let p = at_head("domains_rules_catch");
    let mut client = p.db.client();
    let mut tx = client.transaction().unwrap();
    tx.batch_execute(
        r#"CREATE TABLE coach.zz_bad (
               id int PRIMARY KEY,
               user_id uuid REFERENCES coach.users (id),
               updated_at timestamptz
           );
           GRANT SELECT ON coach.zz_bad TO anon;
           CREATE POLICY zz_bare ON coach.users FOR SELECT TO authenticated USING (auth.uid() = id);
           CREATE POLICY zz_open ON coach.conversations FOR SELECT TO authenticated USING (true);
           CREATE POLICY zz_public ON coach.analysis_results FOR SELECT
               USING ((select auth.uid()) = user_id);
           CREATE FUNCTION coach.zz_no_path() RETURNS int LANGUAGE sql AS 'SELECT 1';
           CREATE FUNCTION coach.zz_definer() RETURNS int LANGUAGE sql SECURITY DEFINER
               SET search_path = public AS 'SELECT 1';"#,
    )
    .unwrap();
    let one = |name: &str| vec![name.to_string()];
    assert_eq!(names(&mut tx, TABLES_WITHOUT_RLS), one("coach.zz_bad"));
    assert_eq!(
        names(&mut tx, FOREIGN_KEYS_WITHOUT_INDEX),
        one("coach.zz_bad.zz_bad_user_id_fkey")
    );
    assert_eq!(
        names(&mut tx, POLICIES_FOR_PUBLIC),
        one("coach.analysis_results.zz_public")
    );
    assert_eq!(
        policy_violations(&mut tx),
        (
            one("coach.users.zz_bare"),
            one("coach.conversations.zz_open")
        )
    );
    assert_eq!(
        names(&mut tx, FUNCTIONS_WITHOUT_SEARCH_PATH),
        vec![
            "coach.zz_definer()".to_string(),
            "coach.zz_no_path()".to_string()
        ]
    );
    assert_eq!(names(&mut tx, DEFINERS_FOR_ANON), one("coach.zz_definer()"));
    assert_eq!(names(&mut tx, RELATIONS_FOR_ANON), one("coach.zz_bad"));
    assert_eq!(
        names(&mut tx, UPDATED_AT_WITHOUT_TRIGGER),
        one("coach.zz_bad")
    );
    tx.rollback().unwrap();
}

#[test]
fn bare_uid_detection() {
    assert!(!calls_bare_uid("(( SELECT auth.uid() AS uid) = id)"));
    assert!(!calls_bare_uid("(user_id = ( SELECT auth.uid() AS uid))"));
    assert!(calls_bare_uid("(auth.uid() = id)"));
    assert!(calls_bare_uid(
        "((( SELECT auth.uid() AS uid) = id) OR (auth.uid() = user_id))"
    ));
    assert!(!calls_bare_uid("is_active"));
}
