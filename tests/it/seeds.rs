//! Seed sets against a real PostgreSQL: idempotent loads, counts, guards, input errors that
//! name file, table, row and column and write nothing, and `seed status`.

use crate::support::{Project, Run};

const A: &str = "00000000-0000-4000-8000-00000000a001";
const B: &str = "00000000-0000-4000-8000-00000000a002";
const C: &str = "00000000-0000-4000-8000-00000000a003";

/// A small schema with what seeds must handle: arrays, jsonb, numeric, dates, a varchar
/// limit, a CHECK, a generated column, a composite key, an identity key, a table without a
/// primary key, and triggers that log every row they fire for.
const FIXTURE: &str = r#"-- UP
CREATE SCHEMA coach;
CREATE TABLE coach.audit (what text NOT NULL);
CREATE TABLE coach.users (
    id         uuid PRIMARY KEY,
    email      varchar(20) NOT NULL UNIQUE,
    stage      integer NOT NULL DEFAULT 1 CHECK (stage IN (1, 2, 3)),
    goals      text[] NOT NULL DEFAULT '{}',
    profile    jsonb NOT NULL DEFAULT '{}',
    resources  jsonb NOT NULL DEFAULT '[]',
    score      numeric(3,1),
    active     boolean NOT NULL DEFAULT true,
    born       date,
    seen_at    timestamptz,
    level      integer GENERATED ALWAYS AS (stage * 10) STORED
);
CREATE TABLE coach.memberships (
    group_id uuid NOT NULL,
    user_id  uuid NOT NULL REFERENCES coach.users (id),
    role     text NOT NULL DEFAULT 'member',
    PRIMARY KEY (group_id, user_id)
);
CREATE TABLE coach.events (
    id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES coach.users (id),
    kind    text NOT NULL
);
CREATE FUNCTION coach.log() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO coach.audit (what) VALUES (TG_WHEN || ' ' || TG_OP || ' ' || TG_TABLE_NAME);
    RETURN NEW;
END $$;
CREATE TRIGGER users_before BEFORE INSERT OR UPDATE ON coach.users
    FOR EACH ROW EXECUTE FUNCTION coach.log();
CREATE TRIGGER users_after AFTER INSERT OR UPDATE ON coach.users
    FOR EACH ROW EXECUTE FUNCTION coach.log();
-- DOWN
DROP SCHEMA coach CASCADE;
"#;

/// A migrated fixture project.
fn fixture(label: &str) -> Project {
    let p = Project::new(label);
    p.migration("0001_coach_fixture.sql", FIXTURE);
    p.migrate(&["up"]).success();
    p
}

fn users_file() -> String {
    format!(
        r#"# two users, one with every kind of value
[[coach.users]]
id = "{A}"
email = "river@example.com"
stage = 2
goals = ["sleep", "focus, daily", "say \"hi\""]
profile = {{ tone = "gentle", days = [1, 2] }}
resources = [{{ title = "breathing" }}, {{ title = "walk" }}]
score = 7.5
active = false
born = 1990-04-01
seen_at = 2024-05-01T10:00:00Z

[[coach.users]]
id = "{B}"
email = "sky@example.com"
"#
    )
}

fn memberships_file() -> String {
    format!(
        r#"[[coach.memberships]]
group_id = "{C}"
user_id = "{A}"
role = "owner"

[[coach.memberships]]
group_id = "{C}"
user_id = "{B}"

[[coach.events]]
id = 1
user_id = "{A}"
kind = "joined"
"#
    )
}

fn count(p: &Project, sql: &str) -> i64 {
    p.db.scalar(sql)
}

fn seed_runs(p: &Project) -> i64 {
    let exists: bool =
        p.db.scalar("SELECT to_regclass('_migrate.seed_runs') IS NOT NULL");
    if exists {
        count(p, "SELECT count(*) FROM _migrate.seed_runs")
    } else {
        0
    }
}

/// (inserted, updated, unchanged) of a `--json` run.
fn totals(run: &Run) -> (i64, i64, i64) {
    let t = &run.json()["totals"];
    (
        t["inserted"].as_i64().unwrap(),
        t["updated"].as_i64().unwrap(),
        t["unchanged"].as_i64().unwrap(),
    )
}

/// Row counts of every fixture table, and of seed_runs: "nothing was written" when equal.
fn fixture_counts(p: &Project) -> Vec<i64> {
    ["users", "memberships", "events", "audit"]
        .iter()
        .map(|t| count(p, &format!("SELECT count(*) FROM coach.{t}")))
        .chain([seed_runs(p)])
        .collect()
}

#[test]
fn loading_twice_writes_nothing_the_second_time() {
    let p = fixture("seed_twice");
    p.write("seeds/base/010_users.toml", &users_file());
    p.write("seeds/base/020_memberships.toml", &memberships_file());

    let first = p.migrate(&["seed", "base", "--json"]);
    first.success();
    assert_eq!(totals(&first), (5, 0, 0));
    let tables = &first.json()["tables"];
    assert_eq!(tables[0]["table"], "coach.users");
    assert_eq!(tables[0]["inserted"], 2);
    assert_eq!(tables[1]["table"], "coach.memberships");
    assert_eq!(
        first.json()["files"][1]["file"],
        "seeds/base/020_memberships.toml"
    );
    // Values arrive as the column types say.
    let row =
        p.db.client()
            .query_one(
                "SELECT goals, profile::text, resources::text, score::text, active, born::text,
                    seen_at = '2024-05-01T10:00:00Z', level
             FROM coach.users WHERE id = $1::text::uuid",
                &[&A],
            )
            .unwrap();
    assert_eq!(
        row.get::<_, Vec<String>>(0),
        vec!["sleep", "focus, daily", "say \"hi\""]
    );
    assert_eq!(
        row.get::<_, String>(1),
        r#"{"days": [1, 2], "tone": "gentle"}"#
    );
    assert_eq!(
        row.get::<_, String>(2),
        r#"[{"title": "breathing"}, {"title": "walk"}]"#
    );
    assert_eq!(row.get::<_, String>(3), "7.5");
    assert!(!row.get::<_, bool>(4));
    assert_eq!(row.get::<_, String>(5), "1990-04-01");
    assert!(row.get::<_, bool>(6));
    assert_eq!(row.get::<_, i32>(7), 20);
    // Absent columns got their defaults; the composite and identity keys loaded.
    assert_eq!(
        count(
            &p,
            &format!("SELECT stage::bigint FROM coach.users WHERE id = '{B}'")
        ),
        1
    );
    assert_eq!(
        p.db.scalar::<String>(&format!(
            "SELECT role FROM coach.memberships WHERE user_id = '{B}'"
        )),
        "member"
    );
    assert_eq!(count(&p, "SELECT max(id) FROM coach.events"), 1);
    // Each trigger fired once per inserted user.
    assert_eq!(count(&p, "SELECT count(*) FROM coach.audit"), 4);

    let dump = p.db.dump_data(&["coach"]);
    let xmins: String =
        p.db.scalar("SELECT string_agg(xmin::text, ',' ORDER BY id) FROM coach.users");
    let second = p.migrate(&["seed", "base", "--json"]);
    second.success();
    assert_eq!(totals(&second), (0, 0, 5));
    assert_eq!(
        p.db.dump_data(&["coach"]),
        dump,
        "the second load changed data"
    );
    let after: String =
        p.db.scalar("SELECT string_agg(xmin::text, ',' ORDER BY id) FROM coach.users");
    assert_eq!(after, xmins, "equal rows were rewritten");
    assert_eq!(
        count(&p, "SELECT count(*) FROM coach.audit"),
        4,
        "a trigger fired"
    );
    assert_eq!(seed_runs(&p), 4);
    assert_eq!(
        count(
            &p,
            "SELECT count(*) FROM _migrate.seed_runs
             WHERE seed_set = 'base' AND file = '010_users.toml' AND inserted = 0
               AND updated = 0 AND unchanged = 2 AND ran_by = current_user
               AND checksum = (SELECT checksum FROM _migrate.seed_runs ORDER BY id LIMIT 1)"
        ),
        1
    );
}

#[test]
fn human_report_is_a_table_per_table_and_per_file() {
    let p = fixture("seed_human");
    p.write("seeds/base/010_users.toml", &users_file());
    // By default one row per schema; --verbose gives every table and file.
    p.migrate(&["seed", "base", "--dry-run"])
        .success()
        .stdout_has("│ coach  ┆ 1      ┆ 2        ┆ 0       ┆ 0         │")
        .stdout_has("--verbose: counts per table and per file");
    p.migrate(&["seed", "base", "--verbose"])
        .success()
        .stdout_has("│ coach.users ┆ 2        ┆ 0       ┆ 0         │")
        .stdout_has("│ base ┆ seeds/base/010_users.toml ┆ 2        ┆ 0       ┆ 0         │")
        .stdout_has("seed base: 2 inserted, 0 updated, 0 unchanged from 1 file(s)");
}

#[test]
fn changing_one_value_updates_exactly_one_row() {
    let p = fixture("seed_one_change");
    p.write("seeds/base/010_users.toml", &users_file());
    p.migrate(&["seed", "base"]).success();
    let audit = count(&p, "SELECT count(*) FROM coach.audit");
    p.write(
        "seeds/base/010_users.toml",
        &users_file().replace("sky@example.com", "sky2@example.com"),
    );
    let run = p.migrate(&["seed", "base", "--json"]);
    run.success();
    assert_eq!(totals(&run), (0, 1, 1));
    assert_eq!(
        p.db.scalar::<String>(&format!(
            "SELECT email::text FROM coach.users WHERE id = '{B}'"
        )),
        "sky2@example.com"
    );
    assert_eq!(count(&p, "SELECT count(*) FROM coach.audit"), audit + 2);
    // A new row next to existing ones is inserted; the others stay as they are.
    p.write(
        "seeds/base/010_users.toml",
        &format!(
            "{}\n[[coach.users]]\nid = \"{C}\"\nemail = \"c\\tc@example.com\"\ngoals = [\"a\\\\b\"]\n",
            users_file().replace("sky@example.com", "sky2@example.com")
        ),
    );
    let run = p.migrate(&["seed", "base", "--json"]);
    run.success();
    assert_eq!(totals(&run), (1, 0, 2));
    assert_eq!(
        p.db.scalar::<String>(&format!(
            "SELECT email::text || ' ' || goals[1] FROM coach.users WHERE id = '{C}'"
        )),
        "c\tc@example.com a\\b"
    );
    // A column left out of a later file keeps its value: seeds compare what they give.
    p.write(
        "seeds/base/010_users.toml",
        &format!("[[coach.users]]\nid = \"{A}\"\nemail = \"river@example.com\"\n"),
    );
    let run = p.migrate(&["seed", "base", "--json"]);
    assert_eq!(totals(&run), (0, 0, 1));
    assert_eq!(
        count(
            &p,
            &format!("SELECT stage::bigint FROM coach.users WHERE id = '{A}'")
        ),
        2
    );
}

#[test]
fn repo_schema_loads_twice_with_an_identical_data_dump() {
    let p = Project::with_repo_migrations("seed_repo_twice");
    p.migrate(&["up"]).success();
    p.write(
        "seeds/base/010_users.toml",
        &format!(
            r#"[[auth.users]]
id = "{A}"
email = "river@example.com"

[[coach.users]]
id = "{A}"
email = "river@example.com"
goals = ["sleep"]
profile = {{ tone = "gentle" }}

[[signify.users]]
id = "{A}"
email = "river@example.com"
nickname = "river"
xp = 2500
"#
        ),
    );
    p.write(
        "seeds/base/020_chat.toml",
        &format!(
            r#"[[coach.conversations]]
id = "{B}"
user_id = "{A}"
message_text = "hello"
sender_type = "user"
created_at = 2024-05-01T10:00:00Z
"#
        ),
    );
    let schemas = ["auth", "coach", "wellness", "partner", "signify", "counsel"];
    let first = p.migrate(&["seed", "base", "--json"]);
    first.success();
    assert_eq!(totals(&first), (4, 0, 0));
    assert_eq!(count(&p, "SELECT level::bigint FROM signify.users"), 2);
    let dump = p.db.dump_data(&schemas);
    let second = p.migrate(&["seed", "base", "--json"]);
    second.success();
    assert_eq!(totals(&second), (0, 0, 4));
    assert_eq!(p.db.dump_data(&schemas), dump);

    p.write(
        "seeds/base/020_chat.toml",
        &format!(
            "[[coach.conversations]]\nid = \"{B}\"\nuser_id = \"{A}\"\nmessage_text = \"hello!\"\n\
             sender_type = \"user\"\ncreated_at = 2024-05-01T10:00:00Z\n"
        ),
    );
    let third = p.migrate(&["seed", "base", "--json"]);
    assert_eq!(totals(&third), (0, 1, 3));

    // A generated column in a file is an input error naming it; nothing is written.
    p.write(
        "seeds/base/030_level.toml",
        &format!("[[signify.users]]\nid = \"{A}\"\nlevel = 9\n"),
    );
    let before = seed_runs(&p);
    p.migrate(&["seed", "base"]).code(2).stderr_has(
        "seeds/base/030_level.toml:1: signify.users row 1, column `level`: is a generated column",
    );
    assert_eq!(seed_runs(&p), before);
}

#[test]
fn seed_test_loads_base_then_test_and_records_each_set() {
    let p = fixture("seed_test_set");
    p.write("seeds/base/010_users.toml", &users_file());
    p.write("seeds/test/010_memberships.toml", &memberships_file());
    p.write(
        "seeds/test/020_more.sql",
        "INSERT INTO coach.audit (what) SELECT 'from sql' \
         WHERE NOT EXISTS (SELECT 1 FROM coach.audit WHERE what = 'from sql');\n",
    );
    let run = p.migrate(&["seed", "test", "--json"]);
    run.success();
    let files = run.json()["files"].clone();
    let shown: Vec<(&str, &str, &str)> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["seed_set"].as_str().unwrap(),
                f["file"].as_str().unwrap(),
                f["kind"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        vec![
            ("base", "seeds/base/010_users.toml", "toml"),
            ("test", "seeds/test/010_memberships.toml", "toml"),
            ("test", "seeds/test/020_more.sql", "sql"),
        ]
    );
    assert_eq!(count(&p, "SELECT count(*) FROM coach.memberships"), 2);
    assert_eq!(
        count(
            &p,
            "SELECT count(*) FROM coach.audit WHERE what = 'from sql'"
        ),
        1
    );
    let sets: String = p.db.scalar(
        "SELECT string_agg(seed_set || '/' || file, ' ' ORDER BY id) FROM _migrate.seed_runs",
    );
    assert_eq!(
        sets,
        "base/010_users.toml test/010_memberships.toml test/020_more.sql"
    );
    p.migrate(&["seed", "test"]).success();
    assert_eq!(
        count(
            &p,
            "SELECT count(*) FROM coach.audit WHERE what = 'from sql'"
        ),
        1
    );
    // A GENERATED ALWAYS identity key takes the file's value next to existing rows too.
    p.write(
        "seeds/test/010_memberships.toml",
        &format!(
            "{}\n[[coach.events]]\nid = 7\nuser_id = \"{B}\"\nkind = \"left\"\n",
            memberships_file()
        ),
    );
    let run = p.migrate(&["seed", "test", "--json"]);
    assert_eq!(totals(&run), (1, 0, 5));
    assert_eq!(count(&p, "SELECT max(id) FROM coach.events"), 7);
}

#[test]
fn dry_run_reports_counts_and_writes_nothing() {
    let p = fixture("seed_dry_run");
    p.write("seeds/base/010_users.toml", &users_file());
    let before = fixture_counts(&p);
    let run = p.migrate(&["seed", "base", "--dry-run", "--json"]);
    run.success();
    assert_eq!(totals(&run), (2, 0, 0));
    assert_eq!(run.json()["dry_run"], true);
    assert_eq!(fixture_counts(&p), before);
    p.migrate(&["seed", "base", "--dry-run"])
        .success()
        .stdout_has("dry run: seed base would leave 2 inserted, 0 updated, 0 unchanged");
}

#[test]
fn seed_status_shows_loaded_changed_and_never_loaded() {
    let p = fixture("seed_status");
    p.write("seeds/base/010_users.toml", &users_file());
    p.write("seeds/test/010_memberships.toml", &memberships_file());
    let states = |p: &Project| -> Vec<(String, String)> {
        p.migrate(&["seed", "status", "--json"]).success().json()["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    format!(
                        "{}/{}",
                        f["seed_set"].as_str().unwrap(),
                        f["file"].as_str().unwrap()
                    ),
                    f["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let pair = |f: &str, s: &str| (f.to_string(), s.to_string());
    assert_eq!(
        states(&p),
        vec![
            pair("base/010_users.toml", "never_loaded"),
            pair("test/010_memberships.toml", "never_loaded")
        ]
    );
    p.migrate(&["seed", "base"]).success();
    p.write(
        "seeds/base/010_users.toml",
        &users_file().replace("stage = 2", "stage = 3"),
    );
    assert_eq!(
        states(&p),
        vec![
            pair("base/010_users.toml", "changed_since_load"),
            pair("test/010_memberships.toml", "never_loaded")
        ]
    );
    p.migrate(&["seed", "status"])
        .success()
        .stdout_has("changed since load")
        .stdout_has("never loaded")
        .stdout_has("0 loaded, 1 changed since load, 1 never loaded, 0 file missing");
    p.migrate(&["seed", "test"]).success();
    assert_eq!(
        states(&p),
        vec![
            pair("base/010_users.toml", "loaded"),
            pair("test/010_memberships.toml", "loaded")
        ]
    );
    // Status compares checksums and parses nothing: a file broken since is still listed.
    p.write(
        "seeds/test/010_memberships.toml",
        "[[coach.memberships]]\nid = \n",
    );
    assert_eq!(
        states(&p),
        vec![
            pair("base/010_users.toml", "loaded"),
            pair("test/010_memberships.toml", "changed_since_load")
        ]
    );
}

#[test]
fn every_input_error_names_file_row_and_column_and_writes_nothing() {
    let p = fixture("seed_input_errors");
    let user =
        |extra: &str| format!("[[coach.users]]\nid = \"{A}\"\nemail = \"a@example.com\"\n{extra}");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown table",
            format!("{}[[coach.userz]]\nid = \"{B}\"\n", user("")),
            "seeds/base/010_x.toml:4: coach.userz row 1: table `coach.userz` does not exist",
        ),
        (
            "unknown column",
            user("nickname = \"a\"\n"),
            "seeds/base/010_x.toml:1: coach.users row 1, column `nickname`: unknown column; \
             `coach.users` has columns id, email, stage",
        ),
        (
            "wrong TOML type",
            user("stage = true\n"),
            "seeds/base/010_x.toml:1: coach.users row 1, column `stage`: expected an integer \
             for type integer, found a boolean",
        ),
        (
            "not a uuid",
            "[[coach.users]]\nid = \"river\"\nemail = \"a@example.com\"\n".to_string(),
            "seeds/base/010_x.toml:1: coach.users row 1, column `id`: \"river\" is not a uuid",
        ),
        (
            "value PostgreSQL cannot cast",
            format!("{}[[coach.users]]\nid = \"{B}\"\nemail = \"b@example.com\"\nborn = \"yesterday-ish\"\n", user("")),
            "seeds/base/010_x.toml:4: coach.users row 2, column `born`: ERROR: invalid input \
             syntax for type date: \"yesterday-ish\"",
        ),
        (
            "missing primary-key value",
            "[[coach.users]]\nemail = \"a@example.com\"\n".to_string(),
            "seeds/base/010_x.toml:1: coach.users row 1, column `id`: primary-key value missing",
        ),
        (
            "missing one column of a composite key",
            format!("{}[[coach.memberships]]\ngroup_id = \"{C}\"\n", user("")),
            "seeds/base/010_x.toml:4: coach.memberships row 1, column `user_id`: primary-key \
             value missing",
        ),
        (
            "generated column",
            user("level = 3\n"),
            "seeds/base/010_x.toml:1: coach.users row 1, column `level`: is a generated column",
        ),
        (
            "same key twice",
            format!("{}{}", user(""), user("")),
            "seeds/base/010_x.toml:4: coach.users row 2: same primary key (id) as row 1",
        ),
        (
            "CHECK violation",
            format!("{}[[coach.users]]\nid = \"{B}\"\nemail = \"b@example.com\"\nstage = 7\n", user("")),
            "seeds/base/010_x.toml:4: coach.users row 2: ERROR: new row for relation \"users\" \
             violates check constraint \"users_stage_check\"",
        ),
        (
            "too long for varchar(20), not truncated",
            user("").replace("a@example.com", "a-very-long-address@example.com"),
            "seeds/base/010_x.toml:1: coach.users row 1: ERROR: value too long for type \
             character varying(20)",
        ),
        (
            "invalid TOML",
            "[[coach.users]]\nid = \n".to_string(),
            "seeds/base/010_x.toml:2: invalid TOML",
        ),
    ];
    let before = fixture_counts(&p);
    for (what, text, expected) in cases {
        p.write("seeds/base/010_x.toml", &text);
        let run = p.migrate(&["seed", "base"]);
        assert_eq!(run.code, 2, "{what}: exit code\n{}", run.stderr);
        assert!(
            run.stderr.contains(expected),
            "{what}: stderr lacks\n{expected}\n---\n{}",
            run.stderr
        );
        assert_eq!(fixture_counts(&p), before, "{what}: something was written");
    }
}

#[test]
fn a_bad_row_in_the_second_file_rolls_back_the_first() {
    let p = fixture("seed_rollback");
    p.write("seeds/base/010_users.toml", &users_file());
    p.write(
        "seeds/base/020_bad.toml",
        &format!(
            "[[coach.memberships]]\ngroup_id = \"{C}\"\nuser_id = \"{A}\"\n\n\
             [[coach.memberships]]\ngroup_id = \"{C}\"\nuser_id = \"{C}\"\n"
        ),
    );
    let before = fixture_counts(&p);
    p.migrate(&["seed", "base"])
        .code(2)
        .stderr_has("seeds/base/020_bad.toml:5: coach.memberships row 2: ERROR: insert or update on table \"memberships\" violates foreign key constraint")
        .stderr_has("the whole seed set was rolled back; nothing was written");
    assert_eq!(fixture_counts(&p), before);

    // A failing .sql file is named with its line, and rolls back the same way.
    p.write(
        "seeds/base/020_bad.toml",
        &format!("[[coach.memberships]]\ngroup_id = \"{C}\"\nuser_id = \"{A}\"\n"),
    );
    p.write("seeds/base/030_bad.sql", "SELECT 1;\n\nSELEC 2;\n");
    p.migrate(&["seed", "base"])
        .code(2)
        .stderr_has("seeds/base/030_bad.sql:3: ERROR: syntax error at or near \"SELEC\"");
    assert_eq!(fixture_counts(&p), before);
}

#[test]
fn refuses_a_database_not_at_head() {
    let p = Project::new("seed_not_at_head");
    p.migration("0001_coach_fixture.sql", FIXTURE);
    p.migration(
        "0002_coach_more.sql",
        "-- UP\nCREATE TABLE coach.more (id int PRIMARY KEY);\n-- DOWN\nDROP TABLE coach.more;\n",
    );
    p.migrate(&["up", "--to", "1"]).success();
    p.write("seeds/base/010_users.toml", &users_file());
    p.migrate(&["seed", "base"])
        .code(1)
        .stderr_has("refusing to seed: the database is not at head; 1 migration(s) pending (migrations/0002_coach_more.sql). Run `migrate up` first");
    assert_eq!(count(&p, "SELECT count(*) FROM coach.users"), 0);
    assert_eq!(seed_runs(&p), 0);
}

#[test]
fn refuses_when_an_applied_migration_changed() {
    let p = fixture("seed_changed_migration");
    p.write("seeds/base/010_users.toml", &users_file());
    p.migration("0001_coach_fixture.sql", &format!("-- edited\n{FIXTURE}"));
    p.migrate(&["seed", "base"])
        .code(1)
        .stderr_has("refusing to seed:")
        .stderr_has("0001_coach_fixture.sql was edited after it was applied");
    assert_eq!(fixture_counts(&p), vec![0, 0, 0, 0, 0]);
}

#[test]
fn seed_test_on_a_protected_environment_needs_allow_destructive() {
    let p = fixture("seed_protected");
    p.write(
        "migrate.toml",
        "[env.production]\nurl_env = \"SEED_TEST_PRODUCTION_URL\"\nprotected = true\n",
    );
    p.write("seeds/base/010_users.toml", &users_file());
    p.write("seeds/test/010_memberships.toml", &memberships_file());
    let env = [("SEED_TEST_PRODUCTION_URL", p.db.url.as_str())];
    p.migrate_raw(&["seed", "test", "--env", "production"], &env)
        .code(1)
        .stderr_has("environment `production` is protected: `seed test` needs --allow-destructive");
    assert_eq!(fixture_counts(&p), vec![0, 0, 0, 0, 0]);
    // base is reference data: allowed, but a protected environment needs a confirmation,
    // which a run without a terminal can only give with --yes.
    p.migrate_raw(&["seed", "base", "--env", "production"], &env)
        .code(2)
        .stderr_has("Load the base seed set (1 file)\": pass --yes");
    assert_eq!(fixture_counts(&p), vec![0, 0, 0, 0, 0]);
    p.migrate_raw(&["seed", "base", "--env", "production", "--yes"], &env)
        .success();
    p.migrate_raw(
        &[
            "seed",
            "test",
            "--env",
            "production",
            "--allow-destructive",
            "--yes",
        ],
        &env,
    )
    .success();
    assert_eq!(count(&p, "SELECT count(*) FROM coach.memberships"), 2);
}

#[test]
fn a_missing_seed_directory_or_stray_file_is_an_input_error() {
    let p = fixture("seed_missing_dir");
    p.migrate(&["seed", "base"])
        .code(2)
        .stderr_has("no seed directory")
        .stderr_has("seeds/base");
    p.write("seeds/base/010_users.toml", &users_file());
    p.migrate(&["seed", "test"])
        .code(2)
        .stderr_has("seeds/test");
    p.write("seeds/base/020_users.tml", "");
    p.migrate(&["seed", "base"]).code(2).stderr_has(
        "020_users.tml: a seed file is .toml (rows per table), .csv (rows of one table) or .sql",
    );
    assert_eq!(fixture_counts(&p), vec![0, 0, 0, 0, 0]);
}

#[test]
fn an_input_error_creates_no_state_tables_either() {
    // No migrations at all: at head, and no `_migrate` schema yet.
    let p = Project::new("seed_no_state");
    p.db.execute("CREATE SCHEMA coach; CREATE TABLE coach.t (id integer PRIMARY KEY);");
    p.write(
        "seeds/base/010_t.toml",
        "[[coach.t]]\nid = 1\nname = \"x\"\n",
    );
    p.migrate(&["seed", "base"])
        .code(2)
        .stderr_has("coach.t row 1, column `name`: unknown column");
    let no_state: bool = p.db.scalar("SELECT to_regnamespace('_migrate') IS NULL");
    assert!(no_state, "a refused seed set created the state tables");
    assert_eq!(count(&p, "SELECT count(*) FROM coach.t"), 0);
    p.write("seeds/base/010_t.toml", "[[coach.t]]\nid = 1\n");
    p.migrate(&["seed", "base"]).success();
    assert_eq!(seed_runs(&p), 1);
}

#[test]
fn rows_load_in_file_order_so_a_row_may_reference_an_earlier_one() {
    let p = fixture("seed_self_reference");
    p.migration(
        "0002_coach_messages.sql",
        "-- UP\nCREATE TABLE coach.messages (\n    id integer PRIMARY KEY,\n    \
         reply_to integer REFERENCES coach.messages (id),\n    body text NOT NULL,\n    \
         topic text\n);\n-- DOWN\nDROP TABLE coach.messages;\n",
    );
    p.migrate(&["up"]).success();
    // Each row gives other columns than the one before: four batches. Grouped by their
    // columns, message 4 would load with message 2, before message 3 it answers.
    let thread = "[[coach.messages]]\nid = 1\nbody = \"a\"\n\
                  [[coach.messages]]\nid = 2\nreply_to = 1\nbody = \"b\"\n\
                  [[coach.messages]]\nid = 3\nreply_to = 2\nbody = \"c\"\ntopic = \"t\"\n\
                  [[coach.messages]]\nid = 4\nreply_to = 3\nbody = \"d\"\n";
    p.write("seeds/base/010_messages.toml", thread);
    let run = p.migrate(&["seed", "base", "--json"]);
    run.success();
    assert_eq!(totals(&run), (4, 0, 0));
    // Into a table that has rows (the upsert, not COPY): replies in the same batch as the
    // message they answer.
    p.write(
        "seeds/base/010_messages.toml",
        &format!(
            "{thread}[[coach.messages]]\nid = 5\nreply_to = 4\nbody = \"e\"\n\
             [[coach.messages]]\nid = 6\nreply_to = 5\nbody = \"f\"\n"
        ),
    );
    let run = p.migrate(&["seed", "base", "--json"]);
    run.success();
    assert_eq!(totals(&run), (2, 0, 4));
    let chain: String = p.db.scalar(
        "SELECT string_agg(id || '>' || coalesce(reply_to, 0), ' ' ORDER BY id) FROM coach.messages",
    );
    assert_eq!(chain, "1>0 2>1 3>2 4>3 5>4 6>5");
}

#[test]
fn a_value_its_type_calls_equal_but_written_otherwise_is_updated() {
    let p = fixture("seed_equal_but_other");
    p.migration(
        "0002_coach_plans.sql",
        "-- UP\nCREATE EXTENSION IF NOT EXISTS citext;\n\
         CREATE TABLE coach.plans (id integer PRIMARY KEY, owner citext, price numeric, \
         every interval);\n-- DOWN\nDROP TABLE coach.plans;\n",
    );
    p.migrate(&["up"]).success();
    let plan = |owner: &str, price: &str, every: &str| {
        format!(
            "[[coach.plans]]\nid = 1\nowner = \"{owner}\"\nprice = \"{price}\"\nevery = \"{every}\"\n"
        )
    };
    p.write(
        "seeds/base/010_plans.toml",
        &plan("river@example.com", "7.5", "1 day"),
    );
    assert_eq!(totals(&p.migrate(&["seed", "base", "--json"])), (1, 0, 0));
    // Each of these is `=` to what is stored, yet a dump would show the new value.
    for (owner, price, every) in [
        ("River@example.com", "7.5", "1 day"),
        ("River@example.com", "7.50", "1 day"),
        ("River@example.com", "7.50", "24 hours"),
    ] {
        p.write("seeds/base/010_plans.toml", &plan(owner, price, every));
        let run = p.migrate(&["seed", "base", "--json"]);
        assert_eq!(totals(&run), (0, 1, 0), "{owner} {price} {every}");
    }
    assert_eq!(
        p.db.scalar::<String>("SELECT owner || ' ' || price || ' ' || every FROM coach.plans"),
        "River@example.com 7.50 24:00:00"
    );
    assert_eq!(totals(&p.migrate(&["seed", "base", "--json"])), (0, 0, 1));
}

#[test]
fn a_csv_file_with_nulls_arrays_json_quotes_and_commas_loads_twice() {
    let p = fixture("seed_csv");
    // An empty unquoted field is NULL (score of A, born of B); `""` is an empty string (role).
    p.write(
        "seeds/base/010_coach.users.csv",
        &format!(
            "id,email,goals,profile,score,born\n\
             {A},river@example.com,\"{{sleep,\"\"focus, daily\"\"}}\",\"{{\"\"tone\"\": \"\"gentle, calm\"\"}}\",,1990-04-01\n\
             {B},\"sky@example.com\",{{}},{{}},7.5,\n"
        ),
    );
    p.write(
        "seeds/base/020_coach.memberships.csv",
        &format!("group_id,user_id,role\n{C},{A},\"\"\n{C},{B},\"owner, \"\"lead\"\"\"\n"),
    );
    let first = p.migrate(&["seed", "base", "--json"]);
    first.success();
    assert_eq!(totals(&first), (4, 0, 0));
    assert_eq!(first.json()["files"][0]["kind"], "csv");
    let client = &mut p.db.client();
    let row = client
        .query_one(
            "SELECT goals, profile->>'tone', score IS NULL, born::text FROM coach.users WHERE id = $1::text::uuid",
            &[&A],
        )
        .unwrap();
    assert_eq!(row.get::<_, Vec<String>>(0), vec!["sleep", "focus, daily"]);
    assert_eq!(row.get::<_, String>(1), "gentle, calm");
    assert!(row.get::<_, bool>(2), "an empty unquoted field is NULL");
    assert_eq!(row.get::<_, String>(3), "1990-04-01");
    let row = client
        .query_one(
            "SELECT score::text, born IS NULL FROM coach.users WHERE id = $1::text::uuid",
            &[&B],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "7.5");
    assert!(row.get::<_, bool>(1));
    let roles: Vec<String> = client
        .query("SELECT role FROM coach.memberships ORDER BY user_id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        roles,
        vec!["", "owner, \"lead\""],
        "\"\" is an empty string"
    );

    let dump = p.db.dump_data(&["coach"]);
    let second = p.migrate(&["seed", "base", "--json"]);
    second.success();
    assert_eq!(totals(&second), (0, 0, 4));
    assert_eq!(p.db.dump_data(&["coach"]), dump);

    // A ragged row is an input error naming file and line; a badly named file too.
    p.write(
        "seeds/base/020_coach.memberships.csv",
        &format!("group_id,user_id,role\n{C},{A}\n"),
    );
    p.migrate(&["seed", "base"]).code(2).stderr_has(
        "seeds/base/020_coach.memberships.csv:2: has 2 field(s) where the header row has 3",
    );
    std::fs::remove_file(p.path().join("seeds/base/020_coach.memberships.csv")).unwrap();
    p.write("seeds/base/020_memberships.csv", "group_id\n");
    p.migrate(&["seed", "base"])
        .code(2)
        .stderr_has("<order>_<schema>.<table>.csv");
}

#[test]
fn sequences_follow_explicit_ids_and_never_go_back() {
    let p = fixture("seed_sequences");
    p.write("seeds/base/010_users.toml", &users_file());
    p.write(
        "seeds/base/020_events.toml",
        &format!(
            "[[coach.events]]\nid = 1\nuser_id = \"{A}\"\nkind = \"joined\"\n\n\
             [[coach.events]]\nid = 5\nuser_id = \"{A}\"\nkind = \"left\"\n"
        ),
    );
    let run = p.migrate(&["seed", "base", "--json"]);
    run.success();
    assert_eq!(run.json()["sequences"][0]["column"], "coach.events.id");
    assert_eq!(run.json()["sequences"][0]["value"], 5);
    let next: i64 = p.db.scalar(&format!(
        "INSERT INTO coach.events (user_id, kind) VALUES ('{A}', 'app') RETURNING id"
    ));
    assert_eq!(
        next, 6,
        "the application's next insert collides with a seeded id"
    );
    // Never backwards: the sequence is past the seeded ids now.
    p.db.execute("SELECT setval(pg_get_serial_sequence('coach.events', 'id'), 100)");
    let run = p.migrate(&["seed", "base", "--json"]);
    run.success();
    assert_eq!(run.json()["sequences"], serde_json::json!([]));
    let next: i64 = p.db.scalar(&format!(
        "INSERT INTO coach.events (user_id, kind) VALUES ('{A}', 'app') RETURNING id"
    ));
    assert_eq!(next, 101);
}

/// A non-superuser role that owns the test database: row-level security applies to it on a
/// table with FORCE ROW LEVEL SECURITY (superusers always bypass it).
fn owner_role(p: &Project, label: &str) -> String {
    let role = format!("seed_{label}_{}", std::process::id());
    let admin =
        &mut postgres::Client::connect(crate::support::server().admin_url(), postgres::NoTls)
            .unwrap();
    admin
        .batch_execute(&format!(
            "CREATE ROLE {role} LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '{role}-pw';
             ALTER DATABASE \"{}\" OWNER TO {role};",
            p.db.name()
        ))
        .unwrap();
    // With a password, for a TEST_DATABASE_URL server that does not trust loopback.
    crate::support::with_credentials(&p.db.url, &role, Some(&format!("{role}-pw")))
}

const FORCED_RLS: &str = r#"-- UP
CREATE SCHEMA coach;
CREATE TABLE coach.notes (
    id   uuid PRIMARY KEY,
    note text NOT NULL
);
ALTER TABLE coach.notes ENABLE ROW LEVEL SECURITY;
ALTER TABLE coach.notes FORCE ROW LEVEL SECURITY;
CREATE POLICY notes_all ON coach.notes USING (true) WITH CHECK (note <> 'forbidden');
-- DOWN
DROP SCHEMA coach CASCADE;
"#;

#[test]
fn rows_under_forced_rls_go_through_the_policies_and_a_refusal_shows_the_servers_error() {
    let p = Project::new("seed_forced_rls");
    let url = owner_role(&p, "rls");
    p.migration("0001_coach_notes.sql", FORCED_RLS);
    p.migrate_raw(&["up", "--database-url", &url], &[])
        .success();
    p.write(
        "seeds/base/010_notes.toml",
        &format!("[[coach.notes]]\nid = \"{A}\"\nnote = \"fine\"\n"),
    );
    // COPY FROM refuses to run under RLS: the rows go in with INSERT, through the policy.
    let run = p.migrate_raw(&["seed", "base", "--json", "--database-url", &url], &[]);
    run.success();
    assert_eq!(totals(&run), (1, 0, 0));
    let run = p.migrate_raw(&["seed", "base", "--json", "--database-url", &url], &[]);
    run.success();
    assert_eq!(totals(&run), (0, 0, 1));
    // A row the policy refuses: the server's error, with file, line, table and row; exit 2.
    p.write(
        "seeds/base/010_notes.toml",
        &format!(
            "[[coach.notes]]\nid = \"{A}\"\nnote = \"fine\"\n\n\
             [[coach.notes]]\nid = \"{B}\"\nnote = \"forbidden\"\n"
        ),
    );
    p.migrate_raw(&["seed", "base", "--database-url", &url], &[])
        .code(2)
        .stderr_has("seeds/base/010_notes.toml:5: coach.notes row 2: ERROR: new row violates row-level security policy for table \"notes\" (SQLSTATE 42501)")
        .stderr_has("row-level security applies to the loading role on coach.notes");
    assert_eq!(count(&p, "SELECT count(*) FROM coach.notes"), 1);
}

#[test]
fn a_copy_the_server_refuses_shows_the_servers_error() {
    // The loading role may read the table but not insert into it: the server refuses the COPY
    // before it starts.
    let p = Project::new("seed_copy_refused");
    let url = owner_role(&p, "copy");
    p.migration(
        "0001_coach_notes.sql",
        "-- UP\nCREATE SCHEMA coach;\nCREATE TABLE coach.notes (id uuid PRIMARY KEY, note text);\n\
         REVOKE INSERT ON coach.notes FROM CURRENT_USER;\n-- DOWN\nDROP SCHEMA coach CASCADE;\n",
    );
    p.migrate_raw(&["up", "--database-url", &url], &[])
        .success();
    p.write(
        "seeds/base/010_notes.toml",
        &format!("[[coach.notes]]\nid = \"{A}\"\nnote = \"fine\"\n"),
    );
    p.migrate_raw(&["seed", "base", "--database-url", &url], &[])
        .code(2)
        .stderr_has("seeds/base/010_notes.toml: coach.notes: ERROR: permission denied for table notes (SQLSTATE 42501)");
}

#[test]
fn a_value_nested_ten_thousand_deep_is_an_input_error_on_one_line_or_many() {
    let p = fixture("seed_deep");
    let deep = format!("{}1{}", "[".repeat(10_000), "]".repeat(10_000));
    for (label, value) in [
        ("one line", deep.clone()),
        ("wrapped", deep.replace('[', "[\n")),
    ] {
        p.write(
            "seeds/base/010_users.toml",
            &format!(
                "[[coach.users]]\nid = \"{A}\"\nemail = \"a@example.com\"\nprofile = {value}\n"
            ),
        );
        let run = p.migrate(&["seed", "base"]);
        run.code(2).stderr_has("seeds/base/010_users.toml:");
        assert!(
            run.stderr.contains("max recursion depth"),
            "{label}: {}",
            run.stderr
        );
    }
}

/// `seed status --json` as (set/file, state) pairs.
fn seed_states(p: &Project) -> Vec<(String, String)> {
    p.migrate(&["seed", "status", "--json"]).success().json()["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                format!(
                    "{}/{}",
                    f["seed_set"].as_str().unwrap(),
                    f["file"].as_str().unwrap()
                ),
                f["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn all_in(states: &[(String, String)], state: &str) -> bool {
    !states.is_empty() && states.iter().all(|(_, s)| s == state)
}

#[test]
fn clear_removes_exactly_the_seeded_rows_and_leaves_a_foreign_one() {
    let p = fixture("seed_clear");
    p.write("seeds/base/010_users.toml", &users_file());
    p.write("seeds/test/010_memberships.toml", &memberships_file());
    p.migrate(&["seed", "test"]).success();
    // Rows no seed file defines, in seeded tables; one refers to a seeded user.
    let d = "00000000-0000-4000-8000-00000000a004";
    p.db.execute(&format!(
        "INSERT INTO coach.users (id, email) VALUES ('{d}', 'own@example.com');
         INSERT INTO coach.memberships (group_id, user_id) VALUES ('{C}', '{d}');"
    ));
    let before = fixture_counts(&p);

    let dry = p.migrate(&["seed", "clear", "--dry-run", "--json"]);
    dry.success();
    assert_eq!(dry.json()["deleted"], 5);
    assert_eq!(fixture_counts(&p), before, "a dry run deleted rows");

    // base alone cannot go while test's rows refer to it: refused, nothing deleted.
    p.migrate(&["seed", "clear", "base"])
        .code(1)
        .stderr_has("violates foreign key constraint")
        .stderr_has("clear `test` before `base`");
    assert_eq!(fixture_counts(&p), before);

    let run = p.migrate(&["seed", "clear", "--json"]);
    run.success();
    let json = run.json();
    assert_eq!(json["deleted"], 5);
    assert_eq!(json["cascaded"], 0);
    let tables: Vec<(String, i64)> = json["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_string(),
                t["deleted"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        tables,
        vec![
            ("coach.events".to_string(), 1),
            ("coach.memberships".to_string(), 2),
            ("coach.users".to_string(), 2)
        ]
    );
    let users: Vec<String> =
        p.db.client()
            .query("SELECT id::text FROM coach.users", &[])
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
    assert_eq!(users, vec![d.to_string()], "only the foreign user stays");
    assert_eq!(count(&p, "SELECT count(*) FROM coach.memberships"), 1);
    assert_eq!(
        count(&p, "SELECT count(*) FROM coach.audit"),
        before[3],
        "rows of a table no seed file names stay"
    );
    assert!(all_in(&seed_states(&p), "cleared"), "{:?}", seed_states(&p));
    p.migrate(&["seed", "status"])
        .success()
        .stdout_has("not loaded (cleared)");

    // Loading again puts them back.
    let again = p.migrate(&["seed", "test", "--json"]);
    again.success();
    assert_eq!(totals(&again), (5, 0, 0));
    assert!(all_in(&seed_states(&p), "loaded"));
}

#[test]
fn clear_on_a_protected_environment_needs_allow_destructive() {
    let p = fixture("seed_clear_protected");
    p.write(
        "migrate.toml",
        "[env.production]\nurl_env = \"SEED_CLEAR_PRODUCTION_URL\"\nprotected = true\n",
    );
    p.write("seeds/base/010_users.toml", &users_file());
    p.migrate(&["seed", "base"]).success();
    let env = [("SEED_CLEAR_PRODUCTION_URL", p.db.url.as_str())];
    p.migrate_raw(&["seed", "clear", "--env", "production", "--yes"], &env)
        .code(1)
        .stderr_has(
            "environment `production` is protected: `seed clear` needs --allow-destructive",
        );
    assert_eq!(count(&p, "SELECT count(*) FROM coach.users"), 2);
    p.migrate_raw(
        &[
            "seed",
            "clear",
            "--env",
            "production",
            "--yes",
            "--allow-destructive",
        ],
        &env,
    )
    .success();
    assert_eq!(count(&p, "SELECT count(*) FROM coach.users"), 0);
}

#[test]
fn setup_migrates_an_empty_database_and_loads_the_seed_set() {
    let p = Project::new("seed_setup");
    p.migration("0001_coach_fixture.sql", FIXTURE);
    p.write("seeds/base/010_users.toml", &users_file());
    p.write("seeds/test/010_memberships.toml", &memberships_file());
    let run = p.migrate(&["setup", "--seed", "test", "--json"]);
    run.success();
    let json = run.json();
    assert_eq!(json["up"]["steps"].as_array().unwrap().len(), 1);
    assert_eq!(json["seed"]["totals"]["inserted"], 5);
    assert_eq!(json["exit_code"], 0);
    assert_eq!(p.applied(), vec![1]);
    // Again: nothing to apply, nothing to write.
    let run = p.migrate(&["setup", "--seed", "test", "--json"]);
    run.success();
    assert_eq!(run.json()["up"]["steps"], serde_json::json!([]));
    assert_eq!(run.json()["seed"]["totals"]["inserted"], 0);
    p.migrate(&["setup"])
        .success()
        .stdout_has("seed base: 0 inserted, 0 updated, 2 unchanged from 1 file(s)");

    // A seed problem after `up`: the seed's exit code; the migrations stay applied.
    let q = Project::new("seed_setup_bad");
    q.migration("0001_coach_fixture.sql", FIXTURE);
    q.write("seeds/base/010_users.toml", "[[coach.users]]\nid = \"x\"\n");
    q.migrate(&["setup"])
        .code(2)
        .stderr_has("`up` applied 1 migration(s) (they stay applied)")
        .stderr_has("seeds/base/010_users.toml:1: coach.users row 1, column `id`");
    assert_eq!(q.applied(), vec![1]);
}

#[test]
fn status_after_down_and_up_shows_the_files_not_loaded() {
    let p = fixture("seed_status_recreated");
    p.write("seeds/base/010_users.toml", &users_file());
    p.write("seeds/test/010_memberships.toml", &memberships_file());
    p.write(
        "seeds/test/020_refresh.sql",
        "-- the audit log of the seed run\nINSERT INTO coach.audit (what) VALUES ('seeded');\n",
    );
    p.migrate(&["seed", "test"]).success();
    assert!(all_in(&seed_states(&p), "loaded"));
    p.migrate(&["down", "--all"]).success();
    p.migrate(&["up"]).success();
    let states = seed_states(&p);
    assert!(all_in(&states, "tables_recreated"), "{states:?}");
    p.migrate(&["seed", "status"])
        .success()
        .stdout_has("not loaded (tables recreated since)");
    p.migrate(&["seed", "test"]).success();
    assert!(all_in(&seed_states(&p), "loaded"));
}

#[test]
fn an_unchanged_file_is_skipped_only_while_nothing_wrote_to_its_tables() {
    let p = fixture("seed_unchanged_skip");
    p.write("seeds/base/010_users.toml", &users_file());
    p.write("seeds/base/020_memberships.toml", &memberships_file());
    p.migrate(&["seed", "base"]).success();
    // Unchanged file, untouched tables: reported unchanged, table by table.
    let run = p.migrate(&["seed", "base", "--json"]);
    run.success();
    assert_eq!(totals(&run), (0, 0, 5));
    assert_eq!(run.json()["tables"][1]["table"], "coach.memberships");
    assert_eq!(run.json()["tables"][1]["unchanged"], 2);
    // A seeded row edited and another deleted in the database: the same file restores both.
    p.db.execute(&format!(
        "UPDATE coach.users SET email = 'edited@example.com' WHERE id = '{B}';
         DELETE FROM coach.memberships WHERE user_id = '{B}';"
    ));
    let run = p.migrate(&["seed", "base", "--json"]);
    run.success();
    assert_eq!(totals(&run), (1, 1, 3));
    assert_eq!(
        p.db.scalar::<String>(&format!("SELECT email FROM coach.users WHERE id = '{B}'")),
        "sky@example.com"
    );
    // A row no seed file defines, added to a seeded table: loaded in full again, unchanged.
    p.db.execute(
        "INSERT INTO coach.users (id, email) VALUES ('00000000-0000-4000-8000-00000000a009', 'own@example.com')",
    );
    let run = p.migrate(&["seed", "base", "--json"]);
    run.success();
    assert_eq!(totals(&run), (0, 0, 5));
}

#[test]
fn a_bad_value_in_a_csv_file_names_its_line_and_column_on_an_empty_or_filled_table() {
    let p = fixture("seed_csv_bad_value");
    let file = format!(
        "id,email,born\n{A},river@example.com,1990-04-01\n\"{B}\",sky@example.com,\"yesterday-ish\"\n"
    );
    p.write("seeds/base/010_coach.users.csv", &file);
    // Empty table: the text goes to COPY, and the server's context gives the row.
    p.migrate(&["seed", "base"])
        .code(2)
        .stderr_has("seeds/base/010_coach.users.csv:3: coach.users row 2, column `born`: ERROR: invalid input syntax for type date: \"yesterday-ish\"");
    assert_eq!(count(&p, "SELECT count(*) FROM coach.users"), 0);
    // A filled table: the upsert statement, and the row found by bisection.
    p.db.execute(&format!(
        "INSERT INTO coach.users (id, email) VALUES ('{C}', 'own@example.com')"
    ));
    p.migrate(&["seed", "base"])
        .code(2)
        .stderr_has("seeds/base/010_coach.users.csv:3: coach.users row 2, column `born`: ERROR: invalid input syntax for type date");
    // Header and key problems are found before anything runs.
    p.write(
        "seeds/base/010_coach.users.csv",
        &format!("id,email,level\n{A},a@example.com,1\n,b@example.com,2\n"),
    );
    p.migrate(&["seed", "base"])
        .code(2)
        .stderr_has("seeds/base/010_coach.users.csv:1: coach.users header, column `level`: is a generated column");
    p.write(
        "seeds/base/010_coach.users.csv",
        &format!("id,email\n{A},a@example.com\n,b@example.com\n{A},c@example.com\n"),
    );
    p.migrate(&["seed", "base"])
        .code(2)
        .stderr_has("seeds/base/010_coach.users.csv:3: coach.users row 2, column `id`: primary-key value is NULL")
        .stderr_has("seeds/base/010_coach.users.csv:4: coach.users row 3: same primary key (id) as row 1");
}

#[test]
fn an_unchanged_file_is_checked_again_after_its_table_changed_shape() {
    let p = fixture("seed_unchanged_reshaped");
    p.write("seeds/base/010_users.toml", &users_file());
    p.migrate(&["seed", "base"]).success();
    // A migration renames a column the file gives: the file no longer fits the table, and
    // saying "unchanged" would hide that.
    p.migration(
        "0002_coach_rename.sql",
        "-- UP\nALTER TABLE coach.users RENAME COLUMN born TO birthday;\n\
         -- DOWN\nALTER TABLE coach.users RENAME COLUMN birthday TO born;\n",
    );
    p.migrate(&["up"]).success();
    p.migrate(&["seed", "base"]).code(2).stderr_has(
        "seeds/base/010_users.toml:2: coach.users row 1, column `born`: unknown column",
    );
}
