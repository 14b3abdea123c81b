//! `_migrate.seed_runs`: one row per seed file loaded (DESIGN §4).

use tokio_postgres::GenericClient;

use super::load::Counts;
use super::SeedFile;

const INSERT: &str = "
INSERT INTO _migrate.seed_runs (seed_set, file, checksum, inserted, updated, unchanged)
VALUES ($1, $2, $3, $4, $5, $6)";

const EXISTS: &str = "SELECT to_regclass('_migrate.seed_runs') IS NOT NULL";

const LATEST: &str = "
SELECT DISTINCT ON (seed_set, file)
       seed_set, file, checksum,
       to_char(ran_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),
       ran_by, inserted, updated, unchanged
FROM _migrate.seed_runs
ORDER BY seed_set, file, ran_at DESC, id DESC";

pub async fn record(
    client: &impl GenericClient,
    file: &SeedFile,
    counts: Counts,
) -> anyhow::Result<()> {
    client
        .execute(
            INSERT,
            &[
                &file.set.as_str(),
                &file.name,
                &file.checksum,
                &counts.inserted,
                &counts.updated,
                &counts.unchanged,
            ],
        )
        .await?;
    Ok(())
}

/// The latest load of a file.
#[derive(Debug, Clone)]
pub struct SeedRun {
    pub seed_set: String,
    pub file: String,
    pub checksum: String,
    /// RFC 3339, UTC.
    pub ran_at: String,
    pub ran_by: String,
    pub counts: Counts,
}

/// The latest load of every file ever loaded, by set and file name; none before the first.
pub async fn latest(client: &impl GenericClient) -> anyhow::Result<Vec<SeedRun>> {
    let exists: bool = client.query_one(EXISTS, &[]).await?.get(0);
    if !exists {
        return Ok(Vec::new());
    }
    Ok(client
        .query(LATEST, &[])
        .await?
        .iter()
        .map(|r| SeedRun {
            seed_set: r.get(0),
            file: r.get(1),
            checksum: r.get(2),
            ran_at: r.get(3),
            ran_by: r.get(4),
            counts: Counts {
                inserted: r.get(5),
                updated: r.get(6),
                unchanged: r.get(7),
            },
        })
        .collect())
}
