//! `migrate`: numbered UP/DOWN PostgreSQL migrations with checksummed history, for the coach,
//! wellness, partner, signify and counsel schemas.

pub mod cli;
pub(crate) mod commands;
pub(crate) mod config;
pub mod conninfo;
pub mod db;
pub(crate) mod engine;
pub(crate) mod error;
pub(crate) mod lint;
pub mod local;
pub(crate) mod lockfile;
pub mod migrations;
pub(crate) mod output;
pub(crate) mod redact;
pub(crate) mod seeds;
pub(crate) mod setup;
pub(crate) mod target;
pub(crate) mod verify;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, DatabaseCommand, SeedCommand};
use commands::Context;
use config::Project;
use error::{exit_status, ExitStatus};
use output::Printer;
use seeds::SeedSet;

/// Parses the command line, runs the command, prints its report; the process exit code.
pub fn main() -> ExitCode {
    // Parsers of user input (squawk's, TOML's) recurse once per nesting level: run on a
    // stack big enough that deep but valid input is an answer, not an abort.
    std::thread::Builder::new()
        .stack_size(BIG_STACK)
        .spawn(main_on_this_thread)
        .ok()
        .and_then(|t| t.join().ok())
        .unwrap_or(ExitCode::FAILURE)
}

/// Bytes of stack for threads that parse user input (virtual: only what is used is touched).
pub(crate) const BIG_STACK: usize = 512 << 20;

fn main_on_this_thread() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return command_line_error(err),
    };
    db::session::JSON_OUTPUT.store(cli.global.json, std::sync::atomic::Ordering::Relaxed);
    let printer = Printer::from_args(&cli.global);
    let status = match run(cli, &printer) {
        Ok(status) => status,
        Err(err) => {
            let (status, err) = match db::session::interrupted() {
                Some(signal) => {
                    let said = format!("interrupted by {}", db::session::signal_name(signal));
                    // An error that says so already is not told twice.
                    let err = if format!("{err:#}").contains(&said) {
                        err
                    } else {
                        err.context(said)
                    };
                    (ExitStatus::Interrupted(signal), err)
                }
                None => {
                    let err = db::pooler::explain_statement_pooler(err);
                    (exit_status(&err), err)
                }
            };
            printer.error(&err, status);
            status
        }
    };
    ExitCode::from(status.code())
}

/// clap's answer to a command line it does not run (a usage error, or `--help`/`--version`),
/// printed as clap prints it. With `--json` a usage error is also one JSON document on stdout,
/// like every other error, so a pipeline reading stdout never gets nothing.
fn command_line_error(err: clap::Error) -> ExitCode {
    if err.use_stderr() && std::env::args_os().skip(1).any(|a| a == "--json") {
        let rendered = err.render().to_string();
        let first = rendered.lines().next().unwrap_or_default();
        let message = first.strip_prefix("error: ").unwrap_or(first);
        let document = serde_json::json!({
            "ok": false,
            "exit_code": ExitStatus::Usage.code(),
            "error": message,
        });
        let text = serde_json::to_string_pretty(&document).unwrap_or_default();
        println!("{}", redact::mask(&text));
    }
    let _ = err.print();
    ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2))
}

/// Runs one command to completion and renders its report.
pub(crate) fn run(cli: Cli, printer: &Printer) -> anyhow::Result<ExitStatus> {
    if let Some(url) = &cli.global.database_url {
        redact::register_connection_string(url);
    }
    if let Ok(url) = std::env::var("DATABASE_URL") {
        redact::register_connection_string(&url);
    }
    if let Ok(password) = std::env::var("PGPASSWORD") {
        redact::register(password);
    }
    if cli.global.verbose {
        // Read by every session when it filters the server's notices (db::verbose).
        std::env::set_var("MIGRATE_VERBOSE", "1");
    }
    // Generated from the command line definition alone: no project, no database.
    match &cli.command {
        Command::Completions(args) => {
            return Ok(printer.emit(&commands::completions::completions(args.shell)))
        }
        Command::Man(args) => {
            return Ok(printer.emit(&commands::completions::man(args.dir.as_deref())?))
        }
        _ => {}
    }
    let cwd = std::env::current_dir()?;
    let project = Project::load(cli.global.config.as_deref(), &cwd)?;
    target::load_dotenv(&project.root)?;
    let ctx = Context {
        project,
        global: cli.global,
        progress: printer.progress(),
        confirm: Box::new(output::TerminalPrompt),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        db::session::watch_signals();
        let work = run_command(&cli.command, &ctx, printer);
        let outcome = match only_reads(&cli.command) {
            Some(name) => {
                let said = || format!(": `{name}` only reads, so nothing was changed");
                db::session::before_writing(said, work).await
            }
            None => work.await,
        };
        // A cancel request may still wait for its answer, and a lock's release to be sent:
        // exiting would cut them off.
        db::session::settle().await;
        db::session::close().await;
        outcome
    })
}

/// The name of `command` when it only reads the database (`status`, `verify`, `plan`, `seed
/// status`, `lint`, a `--dry-run`): a signal ends it at once, since nothing of it needs
/// winding down. Its statement is cancelled as any other, but a pooler that queues it (every
/// server connection taken) has no server connection to pass the cancel request on to, and
/// the command sat out the 10 s limit, then said what was running "may still be rolling
/// back" (attacker finding).
fn only_reads(command: &Command) -> Option<&'static str> {
    Some(match command {
        Command::Status => "status",
        Command::Verify => "verify",
        Command::Plan(_) => "plan",
        Command::Lint(_) => "lint",
        Command::Seed(SeedCommand::Status) => "seed status",
        Command::Up(args) if args.dry_run => "up --dry-run",
        Command::Down(args) if args.dry_run => "down --dry-run",
        Command::Seed(SeedCommand::Base(args) | SeedCommand::Test(args)) if args.dry_run => {
            "seed --dry-run"
        }
        Command::Seed(SeedCommand::Clear(args)) if args.dry_run => "seed clear --dry-run",
        _ => return None,
    })
}

/// Runs the command on the runtime and prints its report; returns the exit status it means.
async fn run_command(
    command: &Command,
    ctx: &Context,
    printer: &Printer,
) -> anyhow::Result<ExitStatus> {
    {
        let status = match command {
            Command::Up(args) => printer.emit(&commands::run::up(ctx, args).await?),
            Command::Down(args) => printer.emit(&commands::run::down(ctx, args).await?),
            Command::Redo(args) => printer.emit(&commands::run::redo(ctx, args).await?),
            Command::Status => printer.emit(&commands::status::status(ctx).await?),
            Command::New(args) => printer.emit(&commands::new::new(ctx, &args.name)?),
            Command::Check => printer.emit(&commands::check::check(ctx)?),
            Command::Lock(args) => printer.emit(&commands::lock::lock(ctx, args).await?),
            Command::Verify => printer.emit(&commands::verify::verify(ctx).await?),
            Command::Baseline(args) => {
                printer.emit(&commands::baseline::baseline(ctx, args.version).await?)
            }
            Command::Repair(args) => printer.emit(&commands::repair::repair(ctx, args).await?),
            Command::Local(command) => printer.emit(&commands::local::local(ctx, *command)?),
            Command::Plan(args) => printer.emit(&commands::promote::plan(ctx, args).await?),
            Command::Promote(args) => printer.emit(&commands::promote::promote(ctx, args).await?),
            Command::Seed(SeedCommand::Base(args)) => {
                printer.emit(&commands::seed::load(ctx, SeedSet::Base, args).await?)
            }
            Command::Seed(SeedCommand::Test(args)) => {
                printer.emit(&commands::seed::load(ctx, SeedSet::Test, args).await?)
            }
            Command::Seed(SeedCommand::Status) => printer.emit(&commands::seed::status(ctx).await?),
            Command::Lint(args) => {
                let report = commands::lint::lint(ctx, args).await?;
                if args.format == cli::LintFormat::Json && !ctx.global.json {
                    Printer::new(true, ctx.global.quiet).emit(&report)
                } else {
                    printer.emit(&report)
                }
            }
            Command::Seed(SeedCommand::Clear(args)) => {
                printer.emit(&commands::seed::clear(ctx, args).await?)
            }
            Command::Setup(args) => printer.emit(&setup::setup(ctx, args).await?),
            // Answered before the project was loaded; here for completeness.
            Command::Completions(args) => {
                printer.emit(&commands::completions::completions(args.shell))
            }
            Command::Man(args) => printer.emit(&commands::completions::man(args.dir.as_deref())?),
            Command::Database(DatabaseCommand::Create) => {
                printer.emit(&commands::database::create(ctx).await?)
            }
            Command::Database(DatabaseCommand::Drop(args)) => {
                printer.emit(&commands::database::drop(ctx, args).await?)
            }
        };
        // Interrupted: the command wound down cleanly; the exit status still says so.
        Ok(match db::session::interrupted() {
            Some(signal) => ExitStatus::Interrupted(signal),
            None => status,
        })
    }
}
