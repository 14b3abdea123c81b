//! Authority, not just isolation (issue 11): verify's splinter rules about who may call and
//! reach what, the privileges, types and outside triggers schema.lock records and drift
//! compares, and the levels and acknowledgements `migrate.toml` may set. Each test builds a
//! small project of its own: the auth layer plus one domain migration.

use serde_json::Value;

use crate::support::{repo, Project, Run};
use crate::verify::{at_level, findings, first, lock, set};

/// A small coach domain: a profile per auth user (made by a trigger on `auth.users`), an enum,
/// a domain, a sequence, a backend-only SECURITY DEFINER function and column-level grants.
const APP: &str = r#"-- UP
CREATE SCHEMA coach;
GRANT USAGE ON SCHEMA coach TO anon, authenticated, service_role;
CREATE TYPE coach.mood AS ENUM ('low', 'steady', 'high');
CREATE DOMAIN coach.score AS integer CHECK (VALUE BETWEEN 0 AND 100);
CREATE SEQUENCE coach.ticket_seq;
GRANT USAGE ON SEQUENCE coach.ticket_seq TO service_role;
CREATE TABLE coach.profiles (
    id uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    email text,
    mood coach.mood,
    score coach.score NOT NULL DEFAULT 50
);
ALTER TABLE coach.profiles ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_profile ON coach.profiles TO authenticated
    USING (id = (SELECT auth.uid())) WITH CHECK (id = (SELECT auth.uid()));
GRANT SELECT ON coach.profiles TO authenticated;
GRANT UPDATE (mood) ON coach.profiles TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON coach.profiles TO service_role;
CREATE FUNCTION coach.grant_bonus(p_user uuid) RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = ''
    AS $$ UPDATE coach.profiles SET score = 100 WHERE id = p_user $$;
REVOKE ALL ON FUNCTION coach.grant_bonus(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION coach.grant_bonus(uuid) TO service_role;
CREATE FUNCTION coach.on_signup() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
    AS $$ BEGIN INSERT INTO coach.profiles (id, email) VALUES (NEW.id, NEW.email); RETURN NEW; END $$;
REVOKE ALL ON FUNCTION coach.on_signup() FROM PUBLIC;
CREATE TRIGGER coach_on_signup AFTER INSERT ON auth.users
    FOR EACH ROW EXECUTE FUNCTION coach.on_signup();
-- DOWN
DROP TRIGGER coach_on_signup ON auth.users;
DROP SCHEMA coach CASCADE;
"#;

/// The fixture project, with its schema.lock if asked, migrated.
fn app(label: &str, with_lock: bool) -> Project {
    let p = Project::new(label);
    let auth = std::fs::read_to_string(repo().join("migrations/0001_platform_auth.sql")).unwrap();
    p.migration("0001_platform_auth.sql", &auth);
    p.migration("0002_coach_app.sql", APP);
    if with_lock {
        lock(&p).success();
    }
    p.migrate(&["up"]).success();
    p
}

/// `verify --json` on `p`, expecting exit `code`.
#[track_caller]
fn verify(p: &Project, code: i32) -> Value {
    let run: Run = p.migrate(&["verify", "--json"]);
    run.code(code);
    run.json()
}

/// Breaks the fixture with `sql` and asserts verify exits 1 with exactly these errors; the
/// findings come back for closer looks.
#[track_caller]
fn breaks(p: &Project, sql: &str, errors: &[(&str, &str)]) -> Value {
    p.db.execute(sql);
    let json = verify(p, 1);
    assert_eq!(at_level(&json, "error"), set(errors), "{json:#}");
    json
}

fn message<'a>(json: &'a Value, rule: &str, object: &str) -> &'a str {
    findings(json)
        .iter()
        .find(|f| f["rule"] == rule && f["object"] == object)
        .unwrap_or_else(|| panic!("no {rule} on {object} in {json:#}"))["message"]
        .as_str()
        .unwrap()
}

#[test]
fn the_fixture_verifies_clean_and_its_lock_records_privileges_types_and_outside_triggers() {
    let p = app("authority_clean", true);
    let json = verify(&p, 0);
    assert_eq!(findings(&json), &Vec::<Value>::new(), "{json:#}");
    assert_eq!(json["drift_compared"], true);

    let text = std::fs::read_to_string(p.path().join("schema.lock")).unwrap();
    for line in [
        "[schemas.coach.grants]\nanon = [\"USAGE\"]\nauthenticated = [\"USAGE\"]",
        "[schemas.coach.tables.profiles.grants]\nauthenticated = [\"SELECT\"]",
        "[schemas.coach.tables.profiles.column_grants.mood]\nauthenticated = [\"UPDATE\"]",
        "[schemas.coach.sequences.ticket_seq.grants]\nservice_role = [\"USAGE\"]",
        "[schemas.coach.functions.\"grant_bonus(p_user uuid)\".grants]\nservice_role = [\"EXECUTE\"]",
        "[schemas.coach.types.mood]\nkind = \"enum\"\nvalues = [\n    \"low\",\n    \"steady\",\n    \"high\",\n]",
        "[schemas.coach.types.score]\nkind = \"domain\"\ndefinition = \"integer CONSTRAINT score_check CHECK (((VALUE >= 0) AND (VALUE <= 100)))\"",
        "[outside_triggers.auth.users]\ncoach_on_signup = \"CREATE TRIGGER coach_on_signup AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION coach.on_signup()\"",
    ] {
        assert!(text.contains(line), "schema.lock lacks\n{line}\n---\n{text}");
    }
    // The owner's own privileges are not recorded: they follow whoever runs the migrations.
    assert!(!text.contains("postgres ="), "{text}");
    // Lock twice: the same bytes.
    lock(&p).success();
    assert_eq!(
        std::fs::read_to_string(p.path().join("schema.lock")).unwrap(),
        text
    );
}

#[test]
fn a_table_granted_to_anon_is_drift() {
    let p = app("authority_grant_table", true);
    let json = breaks(
        &p,
        "GRANT SELECT ON coach.profiles TO anon",
        &[("drift", "coach.profiles.profiles")],
    );
    let f = first(&json, "drift");
    assert_eq!(
        f["message"],
        "privileges of anon on table profiles differ: lock `(none)`, database `SELECT`"
    );
    assert!(
        f["remedy"]
            .as_str()
            .unwrap()
            .starts_with("REVOKE SELECT ON TABLE coach.profiles FROM anon;"),
        "{f}"
    );
}

#[test]
fn column_sequence_and_schema_privileges_are_drift() {
    let p = app("authority_grant_others", true);
    breaks(
        &p,
        "GRANT UPDATE (email, score) ON coach.profiles TO authenticated;
         REVOKE UPDATE (mood) ON coach.profiles FROM authenticated;
         GRANT USAGE ON SEQUENCE coach.ticket_seq TO authenticated;
         REVOKE USAGE ON SCHEMA coach FROM anon",
        &[
            ("drift", "coach.profiles.email"),
            ("drift", "coach.profiles.score"),
            ("drift", "coach.profiles.mood"),
            ("drift", "coach.ticket_seq"),
            ("drift", "coach.coach"),
        ],
    );
    let json = verify(&p, 1);
    assert_eq!(
        message(&json, "drift", "mood"),
        "privileges of authenticated on column mood differ: lock `UPDATE`, database `(none)`"
    );
    assert_eq!(
        message(&json, "drift", "coach"),
        "privileges of anon on schema coach differ: lock `USAGE`, database `(none)`"
    );
    let mood = findings(&json)
        .iter()
        .find(|f| f["object"] == "mood")
        .unwrap();
    assert!(
        mood["remedy"]
            .as_str()
            .unwrap()
            .starts_with("GRANT UPDATE (mood) ON TABLE coach.profiles TO authenticated;"),
        "{mood}"
    );
}

#[test]
fn a_definer_function_granted_to_anon_is_an_error_and_drift() {
    let p = app("authority_definer_anon", true);
    let json = breaks(
        &p,
        "GRANT EXECUTE ON FUNCTION coach.grant_bonus(uuid) TO anon",
        &[
            (
                "anon_security_definer_function_executable",
                "coach.grant_bonus(p_user uuid)",
            ),
            ("drift", "coach.grant_bonus(p_user uuid)"),
        ],
    );
    assert_eq!(
        message(&json, "drift", "grant_bonus(p_user uuid)"),
        "privileges of anon on function grant_bonus(p_user uuid) differ: lock `(none)`, \
         database `EXECUTE`"
    );
    let rule = first(&json, "anon_security_definer_function_executable");
    assert!(
        rule["remedy"].as_str().unwrap().starts_with(
            "REVOKE EXECUTE ON FUNCTION coach.grant_bonus(p_user uuid) FROM PUBLIC, anon"
        ),
        "{rule}"
    );
    p.migrate(&["verify"])
        .code(1)
        .stdout_has("anon_security_definer_function_executable")
        .stdout_has("coach.grant_bonus(p_user uuid)");
}

#[test]
fn a_definer_function_executable_by_signed_in_users_is_an_error() {
    // No lock: the rules alone fail the run.
    let p = app("authority_definer_authenticated", false);
    breaks(
        &p,
        "GRANT EXECUTE ON FUNCTION coach.grant_bonus(uuid) TO authenticated",
        &[(
            "authenticated_security_definer_function_executable",
            "coach.grant_bonus(p_user uuid)",
        )],
    );
    // Through PUBLIC, the default of every new function: both roles may call it.
    breaks(
        &p,
        "GRANT EXECUTE ON FUNCTION coach.on_signup() TO PUBLIC",
        &[
            (
                "authenticated_security_definer_function_executable",
                "coach.grant_bonus(p_user uuid)",
            ),
            (
                "authenticated_security_definer_function_executable",
                "coach.on_signup()",
            ),
            (
                "anon_security_definer_function_executable",
                "coach.on_signup()",
            ),
        ],
    );
    // SECURITY INVOKER runs with the caller's rights: nothing to report.
    p.db.execute(
        "ALTER FUNCTION coach.grant_bonus(uuid) SECURITY INVOKER;
         ALTER FUNCTION coach.on_signup() SECURITY INVOKER",
    );
    assert_eq!(at_level(&verify(&p, 0), "error"), set(&[]));
}

#[test]
fn two_permissive_policies_for_one_role_and_command_are_reported() {
    let p = app("authority_permissive", false);
    p.db.execute(
        "CREATE POLICY cheerful_profiles ON coach.profiles FOR SELECT TO authenticated
             USING (mood = 'high')",
    );
    // A warning, as splinter rates it: exit 0.
    let json = verify(&p, 0);
    assert_eq!(
        at_level(&json, "warning"),
        set(&[
            ("multiple_permissive_policies", "coach.profiles.profiles"),
            ("drift", "schema.lock"),
        ]),
        "{json:#}"
    );
    assert_eq!(
        message(&json, "multiple_permissive_policies", "profiles"),
        "2 permissive policies apply to authenticated for SELECT: \"cheerful_profiles\", \
         \"own_profile\"; each runs for every row, and the most lenient decides"
    );
    // A FOR ALL policy counts for every command; one for PUBLIC for every role RLS applies
    // to; a RESTRICTIVE one never.
    p.db.execute(
        "DROP POLICY cheerful_profiles ON coach.profiles;
         CREATE POLICY narrow ON coach.profiles AS RESTRICTIVE FOR SELECT TO authenticated
             USING (score > 0);
         CREATE POLICY everyone_updates_mood ON coach.profiles FOR UPDATE TO public
             USING (mood IS NOT NULL)",
    );
    let json = verify(&p, 0);
    let about: Vec<&str> = findings(&json)
        .iter()
        .filter(|f| f["rule"] == "multiple_permissive_policies")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        about,
        [
            "2 permissive policies apply to authenticated for UPDATE: \"everyone_updates_mood\", \
          \"own_profile\"; each runs for every row, and the most lenient decides"
        ],
        "{json:#}"
    );
}

#[test]
fn an_added_enum_value_a_changed_domain_and_a_dropped_outside_trigger_are_drift() {
    let p = app("authority_types_triggers", true);
    let json = breaks(
        &p,
        "ALTER TYPE coach.mood ADD VALUE 'elated';
         ALTER DOMAIN coach.score SET DEFAULT 10;
         DROP TRIGGER coach_on_signup ON auth.users",
        &[
            ("drift", "coach.mood"),
            ("drift", "coach.score"),
            ("drift", "auth.users.coach_on_signup"),
        ],
    );
    assert_eq!(
        message(&json, "drift", "mood"),
        "type mood differs: values: lock `low, steady, high`, database `low, steady, high, elated`"
    );
    assert_eq!(
        message(&json, "drift", "coach_on_signup"),
        "trigger coach_on_signup is in schema.lock but not in the database"
    );
    // A trigger someone else hangs on auth.users with a function of theirs is not ours...
    p.db.execute(
        "CREATE TRIGGER coach_on_signup AFTER INSERT ON auth.users
             FOR EACH ROW EXECUTE FUNCTION coach.on_signup();
         ALTER TYPE coach.mood RENAME VALUE 'elated' TO 'elated_too';
         CREATE FUNCTION auth.audit() RETURNS trigger LANGUAGE plpgsql SET search_path = ''
             AS $$ BEGIN RETURN NEW; END $$;
         CREATE TRIGGER platform_audit AFTER UPDATE ON auth.users
             FOR EACH ROW EXECUTE FUNCTION auth.audit()",
    );
    let json = verify(&p, 1);
    assert_eq!(
        at_level(&json, "error"),
        set(&[("drift", "coach.mood"), ("drift", "coach.score")])
    );
    // ...but one of the project's functions on a platform table is, wherever it lives.
    p.db.execute(
        "CREATE SCHEMA private;
         CREATE FUNCTION private.touch() RETURNS trigger LANGUAGE plpgsql SET search_path = ''
             AS $$ BEGIN RETURN NEW; END $$;
         CREATE TRIGGER private_touch BEFORE UPDATE ON auth.users
             FOR EACH ROW EXECUTE FUNCTION private.touch()",
    );
    assert!(at_level(&verify(&p, 1), "error")
        .contains(&("drift".to_string(), "auth.users.private_touch".to_string())));
}

#[test]
fn migrate_toml_sets_levels_and_acknowledges_findings() {
    let p = app("authority_levels", false);
    p.db.execute(
        "GRANT EXECUTE ON FUNCTION coach.grant_bonus(uuid) TO authenticated;
         CREATE POLICY cheerful_profiles ON coach.profiles FOR SELECT TO authenticated
             USING (mood = 'high')",
    );
    p.write(
        "migrate.toml",
        r#"
[verify.levels]
multiple_permissive_policies = "error"

[[verify.acknowledge]]
rule = "authenticated_security_definer_function_executable"
object = "coach.grant_bonus(p_user uuid)"
reason = "the app's bonus button; grant_bonus checks the caller itself"

[[verify.acknowledge]]
rule = "no_primary_key"
object = "coach.gone"
reason = "a table dropped since"
"#,
    );
    let json = verify(&p, 1);
    assert_eq!(
        at_level(&json, "error"),
        set(&[("multiple_permissive_policies", "coach.profiles.profiles")])
    );
    let acknowledged = first(&json, "authenticated_security_definer_function_executable");
    assert_eq!(
        acknowledged["acknowledged"],
        "the app's bonus button; grant_bonus checks the caller itself"
    );
    assert_eq!(acknowledged["level"], "error");
    assert_eq!(json["acknowledged"], 1);
    assert_eq!(
        json["unmatched_acknowledgements"],
        serde_json::json!([{"rule": "no_primary_key", "object": "coach.gone"}])
    );
    p.migrate(&["verify"])
        .code(1)
        .stdout_has("acknowledged (error) in migrate.toml: the app's bonus button")
        .stdout_has(
            "migrate.toml acknowledges no_primary_key on coach.gone, which verify no longer \
             finds: remove it",
        )
        .stdout_has("1 error(s), 1 warning(s), 0 info, 1 acknowledged");

    // Acknowledge the rest: the run passes, and still shows both.
    p.write(
        "migrate.toml",
        r#"
[[verify.acknowledge]]
rule = "authenticated_security_definer_function_executable"
object = "coach.grant_bonus(p_user uuid)"
reason = "the app's bonus button"

[[verify.acknowledge]]
rule = "multiple_permissive_policies"
object = "coach.profiles"
reason = "merged in the next release"
"#,
    );
    let json = verify(&p, 0);
    assert_eq!(json["acknowledged"], 2);
    assert_eq!(json["errors"], 0);

    // A rule verify does not have is a configuration error naming the key.
    p.write(
        "migrate.toml",
        "[verify.levels]\nunindexed_foreign_key = \"info\"\n",
    );
    p.migrate(&["verify"])
        .code(2)
        .stderr_has("migrate.toml: [verify.levels] unindexed_foreign_key: `unindexed_foreign_key` is not a verify rule");
    p.write(
        "migrate.toml",
        "[[verify.acknowledge]]\nrule = \"rls_off\"\nobject = \"coach.profiles\"\nreason = \"x\"\n",
    );
    p.migrate(&["verify"])
        .code(2)
        .stderr_has("[[verify.acknowledge]] #1 rule: `rls_off` is not a verify rule");
}
