//! One store test suite run against both backends: each test below is instantiated
//! for SQLite (a real file) and PostgreSQL (a real server, see `postgres-server`),
//! both opened through `open_store` as `--db` would be.

mod backend;
mod bad_urls;
mod crash;
mod journal;
mod leases;
mod records;
mod rest;
