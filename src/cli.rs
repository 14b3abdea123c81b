//! The command line: clap derive types only.

use std::path::PathBuf;

pub use clap::ColorChoice;
use clap::{Args, Parser, Subcommand, ValueEnum};
pub use clap_complete::Shell;

#[derive(Debug, Parser)]
#[command(
    name = "migrate",
    version,
    about = "Numbered UP/DOWN PostgreSQL migrations, checksummed history, verification and seeds",
    after_help = "Target: --database-url, else --env NAME (migrate.toml), else $DATABASE_URL \
                  (from the environment, or from .env in the project root, which never \
                  overrides a variable already set), else the project's local cluster under \
                  .migrate/. What the URL leaves out comes from libpq's variables (PGHOST, \
                  PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGSSLMODE, ...) and the password \
                  file (~/.pgpass or PGPASSFILE), as with psql.\n\
                  Exit codes: 0 success, 1 check or migration failed, 2 usage/config/input error, \
                  3 database unreachable or lock not acquired.\n\n\
                  Examples:\n  \
                  migrate up\n  \
                  migrate status\n  \
                  migrate verify --env staging"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Database to work on: a postgres:// URL or libpq key=value pairs (overrides --env and
    /// $DATABASE_URL).
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// A named environment from migrate.toml, e.g. staging.
    #[arg(long = "env", global = true, value_name = "NAME")]
    pub env_name: Option<String>,
    /// Print exactly one JSON document on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Answer yes to confirmations (required for protected environments without a terminal).
    #[arg(long, short = 'y', global = true)]
    pub yes: bool,
    /// Print only errors.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    /// Seconds to wait for another run's migration lock before giving up (exit 3).
    #[arg(long, global = true, value_name = "SECS", default_value_t = 60)]
    pub lock_wait: u64,
    /// Path to migrate.toml (default: the nearest one in this directory or its parents).
    #[arg(long, global = true, value_name = "PATH", env = "MIGRATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Allow down, redo, repair, baseline, `seed test`, `seed clear` and `local reset` on a
    /// protected environment.
    #[arg(long, global = true)]
    pub allow_destructive: bool,
    /// Show more: long reports in full (seed counts per table and file, every verify
    /// finding), and the server's NOTICEs as migrations run (WARNINGs are always shown).
    #[arg(long, short = 'v', global = true)]
    pub verbose: bool,
    /// Colour: auto (a terminal, unless NO_COLOR is set or TERM=dumb), always or never.
    #[arg(long, global = true, value_name = "WHEN", default_value = "auto")]
    pub color: ColorChoice,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations in order.
    #[command(after_help = EXAMPLES_UP)]
    Up(UpArgs),
    /// Revert applied migrations, newest first (default: one).
    #[command(after_help = EXAMPLES_DOWN)]
    Down(DownArgs),
    /// Revert migrations, then apply them again.
    #[command(after_help = EXAMPLES_REDO)]
    Redo(RedoArgs),
    /// Show every migration: applied, pending, changed, missing or dirty.
    #[command(after_help = EXAMPLES_STATUS)]
    Status,
    /// Create the next-numbered migration file with an UP/DOWN skeleton.
    #[command(after_help = EXAMPLES_NEW)]
    New(NewArgs),
    /// Offline: files parse, versions are unique, schema.lock is current.
    #[command(after_help = EXAMPLES_CHECK)]
    Check,
    /// Regenerate schema.lock from a temporary database on a scratch server.
    #[command(after_help = EXAMPLES_LOCK)]
    Lock(LockArgs),
    /// Online: checksums, RLS, policies, functions, indexes, and drift from schema.lock.
    #[command(after_help = EXAMPLES_VERIFY)]
    Verify,
    /// Record migrations up to VERSION as applied without running them.
    #[command(after_help = EXAMPLES_BASELINE)]
    Baseline(BaselineArgs),
    /// Accept a migration's current checksum, or clear its dirty mark.
    #[command(after_help = EXAMPLES_REPAIR)]
    Repair(RepairArgs),
    /// What promoting one environment's migrations to another would apply, and whether it may.
    #[command(after_help = EXAMPLES_PLAN)]
    Plan(PromotionArgs),
    /// Apply the migrations staging has and production lacks, from the files staging ran.
    #[command(after_help = EXAMPLES_PROMOTE)]
    Promote(PromotionArgs),
    /// The zero-setup local PostgreSQL cluster under .migrate/.
    #[command(subcommand, after_help = EXAMPLES_LOCAL)]
    Local(LocalCommand),
    /// Load a seed set idempotently (base, or test = base then test), or show what is loaded.
    #[command(subcommand, after_help = EXAMPLES_SEED)]
    Seed(SeedCommand),
    /// Offline: risky DDL (squawk's rules) and row-level-security gaps in migration files.
    Lint(LintArgs),
    /// Apply pending migrations, then load a seed set: one command for CI and new developers.
    #[command(after_help = EXAMPLES_SETUP)]
    Setup(SetupArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    #[command(after_help = EXAMPLES_COMPLETIONS)]
    Completions(CompletionsArgs),
    /// Print the man page (roff), or write one per command into a directory.
    #[command(after_help = EXAMPLES_MAN)]
    Man(ManArgs),
    /// Create or drop the target database itself.
    #[command(subcommand, after_help = EXAMPLES_DATABASE)]
    Database(DatabaseCommand),
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum DatabaseCommand {
    /// Create the target's database (from the server's `postgres` database); nothing to do
    /// when it exists.
    #[command(after_help = EXAMPLES_DATABASE_CREATE)]
    Create,
    /// Drop the target's database: asks first (--yes without a terminal); a protected
    /// environment also needs --allow-destructive.
    #[command(after_help = EXAMPLES_DATABASE_DROP)]
    Drop(DropArgs),
}

#[derive(Debug, Clone, Copy, Args)]
pub struct DropArgs {
    /// End other sessions connected to it first (DROP DATABASE ... WITH (FORCE)).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    pub shell: Shell,
}

#[derive(Debug, Clone, Args)]
pub struct ManArgs {
    /// Write migrate.1 and migrate-<command>.1 for every command here instead of printing
    /// migrate.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Args)]
pub struct SetupArgs {
    /// The seed set loaded after `up` (test = base, then test).
    #[arg(long, value_enum, value_name = "SET", default_value = "base")]
    pub seed: SeedSetName,
}

/// A seed set named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SeedSetName {
    Base,
    Test,
}

#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Apply pending migrations up to and including this version.
    #[arg(long, value_name = "VERSION")]
    pub to: Option<i64>,
    /// Print the plan and the SQL; write nothing, take no lock.
    #[arg(long)]
    pub dry_run: bool,
    /// Apply every pending migration in one transaction: all or nothing.
    #[arg(long)]
    pub atomic: bool,
    /// Apply pending migrations numbered below the highest applied one.
    #[arg(long)]
    pub allow_out_of_order: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DownArgs {
    /// How many migrations to revert.
    #[arg(long, value_name = "N", conflicts_with_all = ["to", "all"])]
    pub steps: Option<usize>,
    /// Revert every migration above this version.
    #[arg(long, value_name = "VERSION", conflicts_with = "all")]
    pub to: Option<i64>,
    /// Revert every applied migration.
    #[arg(long)]
    pub all: bool,
    /// Print the plan and the SQL; write nothing, take no lock.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
pub struct RedoArgs {
    /// How many of the newest migrations to redo.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub steps: usize,
}

#[derive(Debug, Clone, Args)]
pub struct NewArgs {
    /// Lowercase name starting with its domain, e.g. coach_add_streaks.
    pub name: String,
}

#[derive(Debug, Clone, Args)]
pub struct LockArgs {
    /// Server for the temporary database (needs CREATEDB); default: the local cluster.
    #[arg(long, value_name = "URL")]
    pub scratch_url: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct BaselineArgs {
    pub version: i64,
}

#[derive(Debug, Clone, Args)]
pub struct RepairArgs {
    pub version: i64,
    /// Remove the migration's record instead, so it counts as pending again (after undoing a
    /// half-applied migration by hand).
    #[arg(long)]
    pub forget: bool,
}

#[derive(Debug, Clone, Args)]
pub struct PromotionArgs {
    /// The environment (migrate.toml) whose applied migrations are the reference, e.g. staging.
    #[arg(long, value_name = "ENV")]
    pub from: String,
    /// The environment to bring up to it, e.g. production.
    #[arg(long, value_name = "ENV")]
    pub to: String,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum LocalCommand {
    /// Create (first time) and start the cluster.
    #[command(after_help = EXAMPLES_LOCAL_START)]
    Start,
    /// Stop the cluster.
    #[command(after_help = EXAMPLES_LOCAL_STOP)]
    Stop,
    /// Whether it exists and runs, and where.
    #[command(after_help = EXAMPLES_LOCAL_STATUS)]
    Status,
    /// Print its URL (starting it if needed).
    #[command(after_help = EXAMPLES_LOCAL_URL)]
    Url,
    /// Stop it, delete its data and start an empty one.
    #[command(after_help = EXAMPLES_LOCAL_RESET)]
    Reset,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum SeedCommand {
    /// Load seeds/base: insert new rows, update differing ones, leave equal ones alone.
    #[command(after_help = EXAMPLES_SEED_BASE)]
    Base(SeedArgs),
    /// Load seeds/base, then seeds/test (a protected environment needs --allow-destructive).
    #[command(after_help = EXAMPLES_SEED_TEST)]
    Test(SeedArgs),
    /// Every seed file: loaded, changed since load, never loaded, cleared, or its tables
    /// recreated since.
    #[command(after_help = EXAMPLES_SEED_STATUS)]
    Status,
    /// Remove exactly the rows the seed files define (default: test's, then base's).
    #[command(after_help = EXAMPLES_SEED_CLEAR)]
    Clear(SeedClearArgs),
}

#[derive(Debug, Clone, Copy, Args)]
pub struct SeedClearArgs {
    /// The set whose rows to remove; default both, test first.
    #[arg(value_enum)]
    pub set: Option<SeedSetName>,
    /// Delete inside a transaction that is rolled back: report the counts, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, Args)]
pub struct SeedArgs {
    /// Load inside a transaction that is rolled back: report the counts, write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Clone, Args)]
#[command(
    after_help = "Acknowledge a finding with `-- squawk-ignore <rule> -- reason` directly above \
                  the statement, or, for a migration already applied, with a [[lint.acknowledge]] \
                  entry (version, rule, reason) in migrate.toml. Exit 1 on an error-level finding.\n\n\
                  Examples:\n  migrate lint\n  migrate lint --pending --env production\n  \
                  migrate lint --format github migrations/0060_coach_streaks.sql"
)]
pub struct LintArgs {
    /// Migration files to lint (default: every migration of the project).
    #[arg(value_name = "FILES", conflicts_with = "pending")]
    pub files: Vec<PathBuf>,
    /// Only the migrations `up` would apply to the target database.
    #[arg(long)]
    pub pending: bool,
    /// human: a table; json: as --json; github: workflow annotations for CI.
    #[arg(long, value_enum, default_value_t = LintFormat::Human)]
    pub format: LintFormat,
}

/// How `lint` prints its findings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum LintFormat {
    #[default]
    Human,
    Json,
    Github,
}

/// `--help` of every command ends with these examples.
const EXAMPLES_UP: &str = "Examples:\n  migrate up                  # apply every pending migration\n  migrate up --to 0012        # stop after 0012\n  migrate up --dry-run        # print the plan and its SQL, change nothing";
const EXAMPLES_DOWN: &str = "Examples:\n  migrate down                # revert the newest migration\n  migrate down --steps 3\n  migrate down --to 0012 --dry-run";
const EXAMPLES_REDO: &str = "Examples:\n  migrate redo                # revert the newest migration and apply it again\n  migrate redo --steps 2";
const EXAMPLES_STATUS: &str = "Examples:\n  migrate status\n  migrate status --env staging\n  migrate status --json | jq .counts";
const EXAMPLES_NEW: &str = "Examples:\n  migrate new coach_add_streaks     # writes migrations/<next>_coach_add_streaks.sql\n  migrate new platform_audit_log";
const EXAMPLES_CHECK: &str =
    "Examples:\n  migrate check               # in CI, before the tests\n  migrate check --json";
const EXAMPLES_LOCK: &str = "Examples:\n  migrate lock                # on the local cluster\n  migrate lock --scratch-url postgres://postgres@localhost:5432/postgres";
const EXAMPLES_VERIFY: &str = "Examples:\n  migrate verify\n  migrate verify --env staging --verbose\n  migrate verify --json | jq '.findings[] | select(.level == \"error\")'";
const EXAMPLES_BASELINE: &str = "Examples:\n  migrate baseline 12         # the database already has 0001..0012\n  migrate baseline 12 --env production --allow-destructive";
const EXAMPLES_REPAIR: &str = "Examples:\n  migrate repair 12           # accept 0012's edited checksum, or clear its dirty mark\n  migrate repair 12 --forget  # after undoing a half-applied 0012 by hand";
const EXAMPLES_PLAN: &str = "Examples:\n  migrate plan --from staging --to production\n  migrate plan --from staging --to production --json | jq -e .may_proceed";
const EXAMPLES_PROMOTE: &str = "Examples:\n  migrate promote --from staging --to production\n  migrate promote --from staging --to production --yes --json";
const EXAMPLES_LOCAL: &str = "Examples:\n  migrate local start\n  psql \"$(migrate local url)\"\n  migrate local reset --yes";
const EXAMPLES_SEED: &str =
    "Examples:\n  migrate seed base\n  migrate seed test --dry-run\n  migrate seed status";
const EXAMPLES_COMPLETIONS: &str = "Examples:\n  migrate completions bash > ~/.local/share/bash-completion/completions/migrate\n  migrate completions zsh > ~/.zfunc/_migrate\n  migrate completions fish > ~/.config/fish/completions/migrate.fish";
const EXAMPLES_DATABASE: &str = "Examples:\n  migrate database create\n  DATABASE_URL=postgres://app@db/app_test migrate database create && migrate up";
const EXAMPLES_DATABASE_CREATE: &str =
    "Examples:\n  migrate database create\n  migrate database create --env staging";
const EXAMPLES_DATABASE_DROP: &str = "Examples:\n  migrate database drop            # asks first on a terminal\n  migrate database drop --yes --force";
const EXAMPLES_MAN: &str =
    "Examples:\n  migrate man | man -l -\n  migrate man --dir ~/.local/share/man/man1";
const EXAMPLES_LOCAL_START: &str =
    "Examples:\n  migrate local start\n  migrate local start && migrate up";
const EXAMPLES_LOCAL_STOP: &str = "Examples:\n  migrate local stop\n  migrate local stop --json";
const EXAMPLES_LOCAL_STATUS: &str =
    "Examples:\n  migrate local status\n  migrate local status --json";
const EXAMPLES_LOCAL_URL: &str = "Examples:\n  migrate local url\n  psql \"$(migrate local url)\"";
const EXAMPLES_LOCAL_RESET: &str = "Examples:\n  migrate local reset          # asks first on a terminal\n  migrate local reset --yes    # in scripts";
const EXAMPLES_SEED_BASE: &str = "Examples:\n  migrate seed base\n  migrate seed base --dry-run\n  migrate seed base --env staging";
const EXAMPLES_SEED_TEST: &str = "Examples:\n  migrate seed test\n  migrate seed test --verbose  # counts per table and per file";
const EXAMPLES_SEED_CLEAR: &str = "Examples:\n  migrate seed clear --dry-run    # count what would go\n  migrate seed clear test         # the test set's rows, base stays";
const EXAMPLES_SETUP: &str = "Examples:\n  migrate setup                   # up, then seeds/base\n  migrate setup --seed test --json   # in CI, before the test suite";
const EXAMPLES_SEED_STATUS: &str = "Examples:\n  migrate seed status\n  migrate seed status --json";

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_ends_its_help_with_examples() {
        fn walk(command: &clap::Command, path: &str) {
            for sub in command.get_subcommands() {
                let path = format!("{path} {}", sub.get_name());
                let after = sub.get_after_help().map(|s| s.to_string());
                assert!(
                    after
                        .is_some_and(|a| a.starts_with("Examples:\n  migrate ")
                            || a.contains("\nExamples:\n  ")),
                    "`{path} --help` does not end with examples"
                );
                walk(sub, &path);
            }
        }
        walk(&Cli::command(), "migrate");
    }
}
