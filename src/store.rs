//! The store as strata needs it: reachable with the configured
//! credentials and, before anything is written, honouring conditional put
//! (`PutMode::Create`), which every numbered record relies on (see
//! [`crate::log::RecordDir`]). A store failure is a
//! [`StrataError::Store`]: one line that says what to check.

use std::sync::Arc;

use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::config::{Config, S3Config, StoreLocation};
use crate::error::{Result, StrataError};

/// What went wrong with the store, as a user can act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreProblem {
    NoSuchObject,
    NotFound,
    NoSuchBucket,
    AccessDenied,
    Unreachable,
    /// A second create of one key succeeded: two writers could both take
    /// a commit number.
    NoConditionalPut,
    Failed,
}

impl std::fmt::Display for StoreProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NoSuchObject => "no such object",
            Self::NotFound => "not found (does the bucket exist?)",
            Self::NoSuchBucket => "bucket not found",
            Self::AccessDenied => "access denied: check access_key_id / secret_access_key in [s3] (or AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)",
            Self::Unreachable => "unreachable",
            Self::NoConditionalPut => {
                "does not honour conditional put (PutMode::Create / If-None-Match: *)"
            }
            Self::Failed => "failed",
        })
    }
}

/// Check the store before use: on S3, that the bucket answers with
/// these credentials and, before writing, that it honours conditional
/// put — without it two writers could both take a commit number, so
/// strata refuses to write.
pub async fn check(config: &Config, store: &Arc<dyn ObjectStore>, write: bool) -> Result<()> {
    if !matches!(config.store, StoreLocation::S3 { .. }) {
        return Ok(());
    }
    let name = config.store.to_string();
    let fail = |e: object_store::Error| store_error(&name, &config.s3, e);
    store
        .list_with_delimiter(Some(&Path::from("log")))
        .await
        .map_err(fail)?;
    if write && !probe_conditional_put(store).await.map_err(fail)? {
        return Err(StrataError::Store {
            store: name,
            endpoint: endpoint(&config.s3).to_string(),
            problem: StoreProblem::NoConditionalPut,
            detail: "a second create of the same key succeeded; strata refuses to write, because concurrent commits could be lost".into(),
        });
    }
    Ok(())
}

fn endpoint(s3: &S3Config) -> &str {
    s3.endpoint.as_deref().unwrap_or("the AWS endpoint")
}

/// `e`, from the store named `name`, as a [`StrataError::Store`]: one line
/// that says what to check.
pub fn store_error(name: &str, s3: &S3Config, e: object_store::Error) -> StrataError {
    let text = e
        .to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let problem = match &e {
        object_store::Error::NotFound { .. } if text.contains("NoSuchKey") => {
            StoreProblem::NoSuchObject
        }
        object_store::Error::NotFound { .. } => StoreProblem::NotFound,
        _ if text.contains("NoSuchBucket") => StoreProblem::NoSuchBucket,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => StoreProblem::AccessDenied,
        _ if [
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AccessDenied",
            "403 Forbidden",
        ]
        .iter()
        .any(|s| text.contains(s)) =>
        {
            StoreProblem::AccessDenied
        }
        _ if ["error sending request", "onnect", "timed out"]
            .iter()
            .any(|s| text.contains(s)) =>
        {
            StoreProblem::Unreachable
        }
        _ => StoreProblem::Failed,
    };
    StrataError::Store {
        store: name.to_string(),
        endpoint: endpoint(s3).to_string(),
        problem,
        detail: text,
    }
}

/// Whether the store honours conditional put: create a scratch object
/// twice with `PutMode::Create` — the second must fail. Removes the object
/// after.
pub async fn probe_conditional_put(
    store: &Arc<dyn ObjectStore>,
) -> std::result::Result<bool, object_store::Error> {
    let path = Path::from(format!("_strata/probe/{}", uuid::Uuid::new_v4().simple()));
    let create = || PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    store
        .put_opts(&path, PutPayload::from_static(b"1"), create())
        .await?;
    let second = store
        .put_opts(&path, PutPayload::from_static(b"2"), create())
        .await;
    let _ = store.delete(&path).await;
    match second {
        Err(
            object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. },
        ) => Ok(true),
        Ok(_) => Ok(false),
        Err(e) => Err(e),
    }
}
