//! Integration tests: one binary (faster to link than one per file).

mod bench;
mod check;
mod cli;
mod common;
mod concurrency;
mod conformance;
mod conversion;
mod crash;
mod differential;
mod fuzz;
mod hardening;
mod idempotency;
mod kappa;
mod lambda;
mod log_roundtrip;
mod log_scale;
mod malformed;
mod sample;
mod schema;
mod shell;
mod views;
