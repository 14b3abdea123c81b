//! The command line: clap derive types only.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "migrate",
    version,
    about = "Numbered UP/DOWN PostgreSQL migrations, checksummed history, verification and seeds",
    after_help = "Target: --database-url, else --env NAME (migrate.toml), else $DATABASE_URL, \
                  else the project's local cluster under .migrate/.\n\
                  Exit codes: 0 success, 1 check or migration failed, 2 usage/config/input error, \
                  3 database unreachable or lock not acquired."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Database to work on (overrides --env and $DATABASE_URL).
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
    /// Allow down, redo, repair, baseline, `seed test` and `local reset` on a protected environment.
    #[arg(long, global = true)]
    pub allow_destructive: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations in order.
    Up(UpArgs),
    /// Revert applied migrations, newest first (default: one).
    Down(DownArgs),
    /// Revert migrations, then apply them again.
    Redo(RedoArgs),
    /// Show every migration: applied, pending, changed, missing or dirty.
    Status,
    /// Create the next-numbered migration file with an UP/DOWN skeleton.
    New(NewArgs),
    /// Offline: files parse, versions are unique, schema.lock is current.
    Check,
    /// Regenerate schema.lock from a temporary database on a scratch server.
    Lock(LockArgs),
    /// Online: checksums, RLS, policies, functions, indexes, and drift from schema.lock.
    Verify,
    /// Record migrations up to VERSION as applied without running them.
    Baseline(BaselineArgs),
    /// Accept a migration's current checksum, or clear its dirty mark.
    Repair(RepairArgs),
    /// What promoting one environment's migrations to another would apply, and whether it may.
    Plan(PromotionArgs),
    /// Apply the migrations staging has and production lacks, from the files staging ran.
    Promote(PromotionArgs),
    /// The zero-setup local PostgreSQL cluster under .migrate/.
    #[command(subcommand)]
    Local(LocalCommand),
    /// Load a seed set idempotently (base, or test = base then test), or show what is loaded.
    #[command(subcommand)]
    Seed(SeedCommand),
    /// Offline: risky DDL (squawk's rules) and row-level-security gaps in migration files.
    Lint(LintArgs),
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
    Start,
    /// Stop the cluster.
    Stop,
    /// Whether it exists and runs, and where.
    Status,
    /// Print its URL (starting it if needed).
    Url,
    /// Stop it, delete its data and start an empty one.
    Reset,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum SeedCommand {
    /// Load seeds/base: insert new rows, update differing ones, leave equal ones alone.
    Base(SeedArgs),
    /// Load seeds/base, then seeds/test (a protected environment needs --allow-destructive).
    Test(SeedArgs),
    /// Every seed file: loaded, changed since load, or never loaded.
    Status,
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
                  entry (version, rule, reason) in migrate.toml. Exit 1 on an error-level finding."
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
