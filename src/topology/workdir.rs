//! A component's own folder (its config, prefix and logs), under the
//! system's temporary folder, removed when it drops.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A folder removed on drop.
pub struct WorkDir(PathBuf);

impl WorkDir {
    /// Creates `contend-<what>-<pid>-<nanos>` in the temporary folder.
    pub fn new(what: &str) -> Result<WorkDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path =
            std::env::temp_dir().join(format!("contend-{what}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        Ok(WorkDir(path))
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
