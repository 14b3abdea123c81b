//! A port found free is only free until someone binds it: the local cluster (and so the test
//! harness, which starts its clusters with the same code) starts again on another port when
//! another process took its port first.

use std::os::unix::fs::PermissionsExt;

use crate::support::Project;

/// Stops and removes the project's local cluster even when an assertion fails.
struct Cleanup(std::path::PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(cluster) = migrate::local::Cluster::new(&self.0) {
            cluster.destroy();
        }
    }
}

/// Stands in for `pg_ctl`: on the first `start`, something else binds the port the server is
/// told to use (while `pg_ctl` runs) and writes it to `taken`; everything else is the real one.
const PG_CTL: &str = r#"#!/bin/sh
dir=$(dirname "$0")
if [ "$1" = start ] && [ ! -e "$dir/taken" ]; then
    port=$(printf '%s\n' "$*" | sed -n 's/.*-p \([0-9][0-9]*\) .*/\1/p')
    perl -MIO::Socket::INET -e '
        my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ARGV[0],
                                      Listen => 1) or die "bind: $!";
        open(my $f, ">", "$ARGV[1].tmp") or die; print $f $ARGV[0]; close $f;
        rename("$ARGV[1].tmp", $ARGV[1]); sleep 120;' "$port" "$dir/taken" &
    holder=$!
    while [ ! -s "$dir/taken" ] && kill -0 $holder 2>/dev/null; do sleep 0.1; done
    REAL/pg_ctl "$@"; status=$?
    kill $holder
    exit $status
fi
exec REAL/pg_ctl "$@"
"#;

/// Mutation this catches: starting the server once on the port found free, with no new try
/// when another process binds it first (`migrate local start` then exits 3 with "could not
/// bind"; in the harness, a test process failed to start its cluster).
#[test]
fn the_local_cluster_starts_on_another_port_when_its_port_was_taken() {
    let p = Project::new("port_taken");
    p.migration(
        "0001_coach_t.sql",
        "-- UP\ncreate table coach_t (id int);\n-- DOWN\ndrop table coach_t;\n",
    );
    let _cleanup = Cleanup(p.path().join(".migrate"));
    // The stand-in's directory: the server's user runs it and writes `taken` into it.
    let bin = tempfile::Builder::new()
        .prefix("migrate-pgctl-")
        .tempdir()
        .unwrap();
    let real = migrate::local::find_bindir().unwrap();
    for program in ["initdb", "postgres"] {
        std::os::unix::fs::symlink(real.join(program), bin.path().join(program)).unwrap();
    }
    let script = PG_CTL.replace("REAL", &real.display().to_string());
    std::fs::write(bin.path().join("pg_ctl"), script).unwrap();
    std::fs::set_permissions(
        bin.path().join("pg_ctl"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::fs::set_permissions(bin.path(), std::fs::Permissions::from_mode(0o777)).unwrap();

    let env = [("PG_BINDIR", bin.path().to_str().unwrap())];
    p.migrate_raw(&["local", "start"], &env)
        .success()
        .stdout_has("running on port");
    let taken: u16 = std::fs::read_to_string(bin.path().join("taken"))
        .expect("the stand-in took the first port")
        .trim()
        .parse()
        .unwrap();
    let status = p
        .migrate_raw(&["local", "status", "--json"], &env)
        .success()
        .json();
    assert_eq!(status["cluster"]["running"], true);
    let port = status["cluster"]["port"].as_u64().unwrap() as u16;
    assert_ne!(port, taken);
    p.migrate_raw(&["up"], &env).success();
    p.migrate_raw(&["local", "stop"], &env).success();
}
