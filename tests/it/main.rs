//! Integration tests: the real binary against a real PostgreSQL.

mod support;

mod domains;
mod engine;
mod envs;
mod files;
mod lint;
mod local;
mod seed_data;
mod seeds;
mod verify;
