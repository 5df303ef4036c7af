//! The gateway's errors and their exit codes.
//!
//! A config that is not valid is located at `file:line:col` and says what
//! would be valid (exit code 2, like every bad input); a failure while
//! starting or serving is exit code 1. Requests the gateway refuses or
//! fails are responses and access-log lines, never errors.

use std::path::PathBuf;

use contend_units::located::LocatedError;

/// Everything that can stop the gateway before or while it serves.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file cannot be read or is not valid: `file:line:col: message`.
    #[error(transparent)]
    Config(#[from] LocatedError),
    /// A setting this host cannot apply, like CPUs it does not have.
    #[error("{0}")]
    Usage(String),
    /// The access log could not be opened or written.
    #[error("{path}: {error}")]
    Io {
        /// The access log's path.
        path: PathBuf,
        /// The underlying error (in the message, so not also a `source`).
        error: std::io::Error,
    },
    /// Serving failed: the listen address, a signal handler, stdout.
    #[error("gateway: {0}")]
    Serve(String),
    /// The runtime could not be built.
    #[error("{0}")]
    Runtime(String),
}

impl Error {
    /// Exit code: 2 for a bad config or setting, 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) | Error::Usage(_) => 2,
            Error::Io { .. } | Error::Serve(_) | Error::Runtime(_) => 1,
        }
    }
}

/// Result with the gateway's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
