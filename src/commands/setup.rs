//! `setup`: `up`, then a seed set, with one report and one exit code (what a CI job or a new
//! developer runs on an empty database).

use serde::Serialize;

use super::run::RunReport;
use super::seed::SeedReport;
use super::Context;
use crate::cli::{SeedArgs, SetupArgs, UpArgs};
use crate::error::ExitStatus;
use crate::output::Report;
use crate::seeds::SeedSet;

/// What `setup` did: the migrations applied, then the seed set loaded (none when `up` failed).
#[derive(Debug, Serialize)]
pub struct SetupReport {
    pub up: RunReport,
    pub seed: Option<SeedReport>,
}

/// Runs `up`; if every migration applied, loads the seed set `--seed` names.
pub async fn setup(ctx: &Context, args: &SetupArgs) -> anyhow::Result<SetupReport> {
    let up_args = UpArgs {
        to: None,
        dry_run: false,
        atomic: false,
        allow_out_of_order: false,
    };
    let up = super::run::up(ctx, &up_args).await?;
    if up.status() != ExitStatus::Success {
        return Ok(SetupReport { up, seed: None });
    }
    let set = SeedSet::from(args.seed);
    let applied = up.steps.len();
    let seed = super::seed::load(ctx, set, &SeedArgs { dry_run: false })
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
