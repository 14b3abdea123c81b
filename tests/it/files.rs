//! Every malformed-file rule: exit 2, a message naming file and line, nothing run.

use crate::support::Project;

const OK: &str = "-- UP\ncreate table coach_t (id int);\n-- DOWN\ndrop table coach_t;\n";

/// Runs `up` over one bad file next to a good one; asserts exit 2, the message, and that
/// nothing ran (not even the good file).
#[track_caller]
fn rejects(label: &str, file: &str, bytes: &[u8], message: &str) {
    let p = Project::new(label);
    p.migration("0001_coach_ok.sql", OK);
    std::fs::write(p.migrations().join(file), bytes).unwrap();
    p.migrate(&["up"]).code(2).stderr_has(message);
    assert!(p.applied().is_empty(), "nothing may be recorded");
    let exists: bool =
        p.db.scalar("SELECT to_regclass('public.coach_t') IS NOT NULL");
    assert!(!exists, "nothing may run");
    p.migrate(&["check"]).code(2).stderr_has(message);
}

#[test]
fn bad_file_names() {
    rejects(
        "short_version",
        "002_coach_x.sql",
        OK.as_bytes(),
        "migrations/002_coach_x.sql: version `002` is not at least four digits",
    );
    rejects(
        "uppercase",
        "0002_Coach_x.sql",
        OK.as_bytes(),
        "migrations/0002_Coach_x.sql: name `Coach_x` must be lowercase",
    );
    rejects(
        "no_domain",
        "0002_billing.sql",
        OK.as_bytes(),
        "name `billing` does not start with a domain",
    );
    rejects(
        "no_underscore",
        "0002.sql",
        OK.as_bytes(),
        "no `_` between version and name",
    );
}

#[test]
fn duplicate_versions() {
    rejects(
        "duplicate",
        "00001_coach_again.sql",
        OK.as_bytes(),
        "duplicate version 1 (also migrations/00001_coach_again.sql)",
    );
}

#[test]
fn missing_and_repeated_markers() {
    rejects(
        "no_up",
        "0002_coach_x.sql",
        b"-- a comment only\n",
        "migrations/0002_coach_x.sql: missing `-- UP` marker",
    );
    rejects(
        "no_down",
        "0002_coach_x.sql",
        b"-- UP\nselect 1;\n",
        "migrations/0002_coach_x.sql: missing `-- DOWN` marker",
    );
    rejects(
        "two_ups",
        "0002_coach_x.sql",
        b"-- UP\nselect 1;\n-- UP\n-- DOWN\n",
        "migrations/0002_coach_x.sql:3: second `-- UP` marker",
    );
    rejects(
        "two_downs",
        "0002_coach_x.sql",
        b"-- UP\nselect 1;\n-- DOWN\n\n-- down\n",
        "migrations/0002_coach_x.sql:5: second `-- DOWN` marker",
    );
    rejects(
        "down_first",
        "0002_coach_x.sql",
        b"-- DOWN\n-- UP\nselect 1;\n",
        "migrations/0002_coach_x.sql:1: `-- DOWN` comes before any `-- UP`",
    );
    rejects(
        "sql_in_header",
        "0002_coach_x.sql",
        b"select 1;\n-- UP\nselect 1;\n-- DOWN\n",
        "migrations/0002_coach_x.sql:1: SQL before the `-- UP` marker",
    );
}

#[test]
fn empty_up_and_unclosed_bodies() {
    rejects(
        "unclosed_dollar",
        "0002_coach_x.sql",
        b"-- UP\ncreate function f() returns int language sql as $$\nselect 1\n-- DOWN\n",
        "a $$-quoted body opened at line 2 is never closed",
    );
    rejects(
        "bad_directive",
        "0002_coach_x.sql",
        b"-- transaction: maybe\n-- UP\nselect 1;\n-- DOWN\n",
        "migrations/0002_coach_x.sql:1: unknown value `maybe` for `transaction:`",
    );
}

#[test]
fn non_utf8_bytes() {
    rejects(
        "latin1",
        "0002_coach_x.sql",
        b"-- UP\nselect 'caf\xe9';\n-- DOWN\n",
        "migrations/0002_coach_x.sql:2: not valid UTF-8",
    );
}

#[test]
fn all_problems_are_listed_at_once() {
    let p = Project::new("many_problems");
    p.migration("0001_coach_a.sql", "-- UP\nselect 1;\n");
    p.migration("0002_coach_b.sql", "select 1;\n");
    let run = p.migrate(&["check"]);
    run.code(2)
        .stderr_has("0001_coach_a.sql: missing `-- DOWN`")
        .stderr_has("0002_coach_b.sql:1: SQL before");
}

#[test]
fn crlf_bom_and_odd_markers_are_accepted() {
    let p = Project::new("crlf_bom");
    let mut bytes = b"\xef\xbb\xbf-- header\r\n  --  up  \r\ncreate table coach_crlf (id int);\r\n\t-- Down\r\ndrop table coach_crlf;\r\n".to_vec();
    p.migration("0001_coach_crlf.sql", std::str::from_utf8(&bytes).unwrap());
    p.migrate(&["up"]).success();
    let checksum: String =
        p.db.scalar("SELECT checksum FROM _migrate.schema_migrations");
    // The checksum is over the bytes with CRLF normalised: rewriting with LF endings keeps it.
    bytes.retain(|&b| b != b'\r');
    p.migration("0001_coach_crlf.sql", std::str::from_utf8(&bytes).unwrap());
    // Mutations this catches: a checksum that is not the SHA-256 of the LF-normalised bytes
    // (tried: `migrations::checksum` hashing a prefix first — the old assertions, "applied"
    // in stdout and a 64-character length, passed under it), and hashing the raw bytes, CRLF
    // and all (the LF rewrite then reads `changed`).
    use sha2::Digest;
    assert_eq!(checksum, format!("{:x}", sha2::Sha256::digest(&bytes)));
    let status = p.migrate(&["status", "--json"]).success().json();
    assert_eq!(status["migrations"][0]["state"], "applied", "{status:#}");
    assert_eq!(status["counts"]["changed"], 0, "{status:#}");
    p.migrate(&["down"]).success();
    let exists: bool =
        p.db.scalar("SELECT to_regclass('public.coach_crlf') IS NOT NULL");
    assert!(!exists);
}

#[test]
fn marker_inside_a_dollar_body_is_sql() {
    let p = Project::new("dollar_marker");
    p.migration(
        "0001_coach_fn.sql",
        "-- UP\ncreate function coach_fn() returns int language plpgsql as $$\nbegin\n-- DOWN\nreturn 1;\nend $$;\n-- DOWN\ndrop function coach_fn();\n",
    );
    p.migrate(&["up"]).success();
    assert_eq!(p.db.scalar::<i32>("SELECT coach_fn()"), 1);
    p.migrate(&["down"]).success();
    let exists: bool = p.db.scalar("SELECT to_regproc('coach_fn') IS NOT NULL");
    assert!(!exists);
}

#[test]
fn new_creates_the_next_file_and_rejects_bad_names() {
    let p = Project::new("new_file");
    p.migration("0007_coach_ok.sql", OK);
    p.migrate(&["new", "wellness_add_streaks"])
        .success()
        .stdout_has("migrations/0008_wellness_add_streaks.sql");
    let text =
        std::fs::read_to_string(p.migrations().join("0008_wellness_add_streaks.sql")).unwrap();
    assert!(
        text.contains("\n-- UP\n") && text.contains("\n-- DOWN\n"),
        "{text}"
    );
    // `up` refuses the skeleton's empty UP section until it is written.
    p.migrate(&["up"])
        .code(2)
        .stderr_has("0008_wellness_add_streaks.sql:5: the UP section is empty");
    p.migrate(&["new", "Bad-Name"])
        .code(2)
        .stderr_has("must be lowercase");
    p.migrate(&["new", "billing_x"])
        .code(2)
        .stderr_has("does not start with a domain");
}

/// A UTF-8 byte-order mark added to an applied file is a change (the checksum is of the
/// bytes, unlike CRLF, which is normalised), and `status`, `up` and `verify` say that the BOM
/// is all that changed; `migrate repair` accepts it. A BOM and an edit is an ordinary edit.
/// Fails without the BOM check: the message was "was edited after it was applied".
#[test]
fn an_added_byte_order_mark_is_a_change_named_as_such() {
    let p = Project::new("bom_added");
    let lf = "-- UP\ncreate table coach_bom (id int);\n-- DOWN\ndrop table coach_bom;\n";
    p.migration("0001_coach_bom.sql", &lf.replace('\n', "\r\n"));
    p.migrate(&["up"]).success();
    // CRLF to LF, and a BOM in front: only the BOM counts.
    p.migration("0001_coach_bom.sql", &format!("\u{feff}{lf}"));
    let status = p.migrate(&["status", "--json"]).success().json();
    assert_eq!(status["migrations"][0]["state"], "changed", "{status:#}");
    let problem = status["migrations"][0]["problem"]
        .as_str()
        .unwrap_or_default();
    assert!(
        problem.contains("only a byte-order mark was added")
            && problem.contains("`migrate repair 1`"),
        "{status:#}"
    );
    p.migrate(&["up"]).code(1).stderr_has(
        "0001_coach_bom.sql was changed after it was applied: only a byte-order mark was added",
    );
    let verify = p.migrate(&["verify"]);
    assert!(
        verify.stdout.contains("only a byte-order mark was added"),
        "{verify:?}"
    );
    // A BOM and an edit: an edit.
    p.migration(
        "0001_coach_bom.sql",
        &format!("\u{feff}{}", lf.replace("(id int)", "(id bigint)")),
    );
    p.migrate(&["up"])
        .code(1)
        .stderr_has("was edited after it was applied");
    let status = p.migrate(&["status", "--json"]).success().json();
    assert!(
        !status.to_string().contains("byte-order mark"),
        "{status:#}"
    );
    // The BOM alone again, accepted by repair.
    p.migration("0001_coach_bom.sql", &format!("\u{feff}{lf}"));
    p.migrate(&["repair", "1"]).success();
    let status = p.migrate(&["status", "--json"]).success().json();
    assert_eq!(status["migrations"][0]["state"], "applied", "{status:#}");
}
