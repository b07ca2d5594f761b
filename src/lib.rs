//! strata: a SQL analytics engine that makes the Lambda and Kappa
//! architectures real on Apache Arrow and DataFusion.
//!
//! The log is the system of record: events land as Parquet files under
//! numbered, atomic, put-if-absent commits ([`log`]). Streams and views are
//! declared in SQL ([`catalog`]). [`Strata`] ties a project together:
//!
//! ```no_run
//! # async fn demo() -> strata::Result<()> {
//! let config = strata::config::Config::load(std::path::Path::new("strata.toml"), false)?;
//! let mut strata = strata::Strata::open(config)?;
//! let (_schema, batches) = strata.query("SELECT count(*) FROM orders").await?;
//! # Ok(()) }
//! ```

pub mod batch;
pub mod bench;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod config;
mod engine;
pub mod error;
pub mod guard;
pub mod kappa;
pub mod log;
pub mod operator;
pub mod sample;
pub mod serving;
pub mod speed;
mod status;
pub mod store;

pub use engine::{Strata, ViewState, STORE_URL};
pub use error::{Result, StrataError};
pub use status::{BatchState, StreamStatus, ViewStatus};
