//! The repository's own seed sets: they load on the repository's migrations, load again
//! without a write, cover every enumerated CHECK value, and every RLS script holds on them.

use std::path::Path;

use crate::support::{repo, rolled_back_with_rls_helpers, Project};

const SCHEMAS: [&str; 6] = ["auth", "coach", "wellness", "partner", "signify", "counsel"];

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// A migrated project with the repository's seeds/ copied in.
fn seeded_project(label: &str) -> Project {
    let p = Project::with_repo_migrations(label);
    copy_dir(&repo().join("seeds"), &p.path().join("seeds"));
    p.migrate(&["up"]).success();
    p
}

fn totals(json: &serde_json::Value) -> (i64, i64) {
    let t = &json["totals"];
    (
        t["inserted"].as_i64().unwrap(),
        t["updated"].as_i64().unwrap(),
    )
}

/// Runs a script of tests/sql as superuser, after the RLS helpers, in a rolled-back transaction.
fn run_script(client: &mut postgres::Client, name: &str) -> Result<(), String> {
    let sql = std::fs::read_to_string(repo().join("tests/sql").join(name)).unwrap();
    rolled_back_with_rls_helpers(client, &sql).map_err(|e| {
        e.as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_else(|| e.to_string())
    })
}

#[test]
fn base_set_loads_once_and_then_writes_nothing() {
    let p = seeded_project("repo_seed_base");
    let first = p.migrate(&["seed", "base", "--json"]).success().json();
    let (inserted, updated) = totals(&first);
    assert!(
        inserted > 50,
        "base inserts its reference rows, got {inserted}"
    );
    assert_eq!(updated, 0);
    let dump = p.db.dump_data(&SCHEMAS);
    let second = p.migrate(&["seed", "base", "--json"]).success().json();
    assert_eq!(totals(&second), (0, 0));
    assert_eq!(
        p.db.dump_data(&SCHEMAS),
        dump,
        "a second load changes no byte"
    );
}

#[test]
fn test_set_loads_covers_every_check_value_and_keeps_rls() {
    let p = seeded_project("repo_seed_test");
    let first = p.migrate(&["seed", "test", "--json"]).success().json();
    assert!(totals(&first).0 > 300, "{first}");
    let dump = p.db.dump_data(&SCHEMAS);
    let second = p.migrate(&["seed", "test", "--json"]).success().json();
    assert_eq!(totals(&second), (0, 0));
    assert_eq!(p.db.dump_data(&SCHEMAS), dump);

    let mut client = p.db.client();
    for script in [
        "seed_enum_coverage.sql",
        "rls_coach.sql",
        "rls_wellness.sql",
        "rls_partner.sql",
        "rls_signify.sql",
        "rls_counsel.sql",
        "rls_seeded.sql",
    ] {
        if let Err(message) = run_script(&mut client, script) {
            panic!("tests/sql/{script} failed on the seeded database: {message}");
        }
    }

    // The coverage check can fail (its must-fail control): an allowed value no seed row has.
    // Mutation this catches: the script's gap ASSERT removed or made vacuous (tried:
    // `cardinality(gaps) >= 0`), or assertions switched off (`plpgsql.check_asserts`), under
    // which the coverage line above passed on any seed set.
    client
        .batch_execute(
            "ALTER TABLE coach.users ADD CONSTRAINT users_stage_control CHECK (stage IN (1, 2, 3, 4))",
        )
        .unwrap();
    let message = run_script(&mut client, "seed_enum_coverage.sql")
        .expect_err("a value no seed row has must fail the coverage check");
    assert!(message.contains("coach.users.stage: 4"), "{message}");
    client
        .batch_execute("ALTER TABLE coach.users DROP CONSTRAINT users_stage_control")
        .unwrap();

    // The seeded check can fail: open one table to every signed-in user.
    client
        .batch_execute(
            "CREATE POLICY leak ON counsel.coaching_conversations FOR SELECT TO authenticated USING (true)",
        )
        .unwrap();
    let message =
        run_script(&mut client, "rls_seeded.sql").expect_err("a leak must fail the check");
    assert!(
        message.contains("counsel.coaching_conversations"),
        "{message}"
    );
}

#[test]
fn the_test_set_clears_and_loads_again() {
    let p = seeded_project("repo_seed_clear");
    let empty = p.db.dump_data(&SCHEMAS).lines().count();
    p.migrate(&["seed", "test"]).success();
    let run = p.migrate(&["seed", "clear", "--json"]).success().json();
    assert!(run["deleted"].as_i64().unwrap() > 300, "{run}");
    // The members a trigger derives from each seeded relationship go with it (ON DELETE
    // CASCADE); the analysis job the seed's conversations queued (seeds/README.md) is a row
    // no seed file defines, and stays.
    assert_eq!(run["cascaded"], 4, "{run}");
    let jobs: i64 = p.db.scalar("SELECT count(*) FROM coach.job_queue");
    assert_eq!(jobs, 1);
    assert_eq!(p.db.dump_data(&SCHEMAS).lines().count(), empty + 1);
    let statuses = p.migrate(&["seed", "status", "--json"]).success().json();
    assert!(
        statuses["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["state"] == "cleared"),
        "{statuses}"
    );
    // Loaded again, and again without a write.
    p.migrate(&["seed", "test"]).success();
    let again = p.migrate(&["seed", "test", "--json"]).success().json();
    assert_eq!(totals(&again), (0, 0));
}

/// Clearing `base` after `test` removes the test rows too (ON DELETE CASCADE from the base
/// rows they refer to): `seed status` then calls no test file loaded, and loading `test`
/// again restores them. Mutation this catches: a clear that records only the files of the
/// set it cleared (status showed every test file `loaded` over emptied tables).
#[test]
fn clearing_base_marks_the_test_files_whose_rows_cascaded_away() {
    let p = seeded_project("repo_seed_cascade");
    p.migrate(&["seed", "test"]).success();
    let loaded_rows = p.db.dump_data(&SCHEMAS).lines().count();
    let run = p
        .migrate(&["seed", "clear", "base", "--json"])
        .success()
        .json();
    assert!(run["cascaded"].as_i64().unwrap() > 0, "{run}");
    let states = p.migrate(&["seed", "status", "--json"]).success().json();
    let files = states["files"].as_array().unwrap();
    let test_loaded: Vec<&str> = files
        .iter()
        .filter(|f| f["seed_set"] == "test" && f["state"] == "loaded")
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    // Only the files whose rows are all still there: job_queue has no foreign key to a base
    // row, and the refreshed materialized view keeps its rows until the next refresh.
    assert_eq!(
        test_loaded,
        [
            "130_coach_job_queue.toml",
            "490_signify_refresh_metrics.sql"
        ]
    );
    let kept: i64 = p.db.scalar(
        "SELECT count(*) FROM coach.job_queue WHERE id = '00000000-0000-4000-8000-5eed10410001'",
    );
    assert_eq!(kept, 1);
    assert!(files
        .iter()
        .filter(|f| f["seed_set"] == "base")
        .all(|f| f["state"] == "cleared"));
    p.migrate(&["seed", "test"]).success();
    assert_eq!(p.db.dump_data(&SCHEMAS).lines().count(), loaded_rows);
}
