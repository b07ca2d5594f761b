//! Integration tests: one binary (faster to link than one per file).

mod bench;
mod cli;
mod common;
mod concurrency;
mod conformance;
mod crash;
mod differential;
mod idempotency;
mod kappa;
mod lambda;
mod log_roundtrip;
mod malformed;
mod sample;
mod shell;
