//! The library's errors. Each message names the problem and the fix;
//! [`Error::exit_code`] maps them to the documented exit codes.
//!
//! Failed requests are not errors (they are [`crate::outcome::Outcome`]s):
//! only bad input and setup failures end a run early.

use std::path::PathBuf;

/// Everything that can stop `contend` before or while it measures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A scenario file (or the flags that stand in for one) is not valid.
    /// `location` is `file:line:col` when known.
    #[error("{location}: {message}")]
    Scenario {
        /// `path:line:col`, or `path`, or `command line`.
        location: String,
        /// What is wrong and what would be valid.
        message: String,
    },
    /// A command-line value is not valid.
    #[error("{0}")]
    Usage(String),
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The underlying error (in the message, so not also a `source`).
        error: std::io::Error,
    },
    /// A component (mock upstream, gateway, nginx) failed to start or died.
    #[error("{component}: {message}")]
    Component {
        /// Which component.
        component: String,
        /// What happened, what it printed last, and the fix.
        message: String,
    },
    /// Something failed at run time that is not the input's fault.
    #[error("{0}")]
    Runtime(String),
    /// The host's limits cannot hold the run as asked (too few file
    /// descriptors for its connections); the message names the fix.
    #[error("{0}")]
    Limit(String),
    /// `contend gateway`: the reference gateway's own error, with its own
    /// exit code (2 for a bad config).
    #[error(transparent)]
    Gateway(#[from] contend_gateway::Error),
}

impl Error {
    /// Exit code: 2 for bad input (scenario, flags, a run the host's limits
    /// cannot hold), 1 for everything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Scenario { .. } | Error::Usage(_) | Error::Limit(_) => 2,
            Error::Gateway(e) => e.exit_code(),
            _ => 1,
        }
    }

    /// Shorthand for an [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error,
        }
    }
}

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
