//! The database side of seed sets: the shape of the tables a set writes, upserting its rows,
//! and `_migrate.seed_runs`. What a seed file holds is read in `crate::seeds`, without a
//! database.

pub mod catalog;
pub mod load;
pub mod runs;
