//! Integration tests: the real binary against a real PostgreSQL.

mod support;

mod architecture;
mod connect;
mod daily;
mod domains;
mod engine;
mod envs;
mod files;
mod lint;
mod local;
mod production;
mod seed_data;
mod seeds;
mod truth;
mod verify;
mod verify_authority;
