//! Integration tests: the real binary against a real PostgreSQL.

mod support;

mod engine;
mod files;
