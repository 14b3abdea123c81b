//! `setup`: `up`, then a seed set, with one report and one exit code (what a CI job or a new
//! developer runs on an empty database). It composes two commands, so it sits above
//! `commands/` (no command module imports another).

use serde::Serialize;

use crate::cli::{SeedArgs, SetupArgs, UpArgs};
use crate::commands::run::{self, RunReport};
use crate::commands::seed::{self, SeedReport};
use crate::commands::Context;
use crate::seeds::SeedSet;

/// What `setup` did: the migrations applied, then the seed set loaded (none when `up` failed).
#[derive(Debug, Serialize)]
pub struct SetupReport {
    pub up: RunReport,
    pub seed: Option<SeedReport>,
}

/// Runs `up`; if every migration applied, loads the seed set `--seed` names. Through a
/// transaction pooler, where `seed` is refused, refuses before `up` applies anything.
pub async fn setup(ctx: &Context, args: &SetupArgs) -> anyhow::Result<SetupReport> {
    {
        let (session, target) = ctx.connect().await?;
        if crate::db::pooler::is_transaction_pooler(target.conninfo(), &session).await? {
            return Err(crate::commands::through_pooler(
                &target,
                "setup (`up`, then the seed set, which takes the session-level migration lock)",
            )
            .into());
        }
    }
    let up_args = UpArgs {
        to: None,
        dry_run: false,
        atomic: false,
        allow_out_of_order: false,
    };
    let up = run::up(ctx, &up_args).await?;
    if up.failure.is_some() {
        return Ok(SetupReport { up, seed: None });
    }
    let set = SeedSet::from(args.seed);
    let applied = up.steps.len();
    let seed = seed::load(ctx, set, &SeedArgs { dry_run: false })
        .await
        .map_err(|e| {
            e.context(format!(
                "setup: `up` applied {applied} migration(s) (they stay applied); loading the {} \
                 seed set failed",
                set.as_str()
            ))
        })?;
    Ok(SetupReport {
        up,
        seed: Some(seed),
    })
}
