//! Integration tests: the real binary against a real PostgreSQL.

mod support;

mod architecture;
mod claims;
mod connect;
mod daily;
mod domains;
mod engine;
mod envs;
mod files;
mod guards;
mod lint;
mod local;
mod ports;
mod production;
mod seed_data;
mod seeds;
mod shapes;
mod truth;
mod verify;
mod verify_authority;
