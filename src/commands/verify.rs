//! `verify`: checks a live database against its history, the rules of DESIGN §8, and — when it
//! is at the lock's head — `schema.lock` (drift).

use super::Context;
use crate::db::state;
use crate::error::Error;
use crate::verify::inspect;
pub use crate::verify::inspect::VerifyReport;

pub async fn verify(ctx: &Context) -> anyhow::Result<VerifyReport> {
    let files = ctx.migrations()?;
    let (mut client, target) = ctx.connect().await?;
    let managed = state::is_managed(&*client).await?;
    // Inspected first all the same, so a broken schema.lock is reported as the input error
    // it is (exit 2) whatever the database holds.
    let report = inspect::inspect(&ctx.project, &mut client, &files, target.redacted()).await?;
    if !managed {
        return Err(Error::refused(format!(
            "{} is not managed by migrate (no _migrate state); run `migrate up`, or \
             `migrate baseline VERSION` to adopt an existing schema",
            target.redacted()
        ))
        .into());
    }
    Ok(report)
}
