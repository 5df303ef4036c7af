//! A component's own folder (its config, prefix and logs), under the
//! system's temporary folder, removed when it drops. A run that was killed
//! (SIGKILL runs no destructor) leaves its folders behind; the next run
//! removes them before it makes its own.

use std::path::{Path, PathBuf};
use std::sync::Once;

use crate::error::{Error, Result};

/// What every folder's name starts with: `contend-<what>-<pid>-<nanos>`.
const PREFIX: &str = "contend-";

/// A folder removed on drop.
pub struct WorkDir(PathBuf);

impl WorkDir {
    /// Creates `contend-<what>-<pid>-<nanos>` in the temporary folder
    /// (after removing, once per process, the folders of runs that died).
    pub fn new(what: &str) -> Result<WorkDir> {
        static CLEANED: Once = Once::new();
        CLEANED.call_once(|| {
            clean_stale(&std::env::temp_dir());
        });
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path =
            std::env::temp_dir().join(format!("{PREFIX}{what}-{}-{nanos}", std::process::id()));
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

/// Removes the folders in `temp` left by runs whose process is gone; a
/// folder whose process still runs (or whose name is not ours) is left
/// alone. Returns what was removed.
pub fn clean_stale(temp: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(owner_pid) else {
            continue;
        };
        let alive = Path::new(&format!("/proc/{pid}")).exists();
        if !alive && entry.path().is_dir() && std::fs::remove_dir_all(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    removed
}

/// The PID in a folder name `contend-<what>-<pid>-<nanos>`, if it is one.
fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let mut parts = rest.rsplitn(3, '-');
    let nanos = parts.next()?;
    let pid = parts.next()?;
    let what = parts.next()?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (!what.is_empty() && digits(nanos) && digits(pid))
        .then(|| pid.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_of_dead_runs_go_and_live_ones_stay() {
        let temp = tempfile::tempdir().unwrap();
        // A PID that has ended: a child we started and reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let mine = std::process::id();
        let names = [
            format!("contend-nginx-{dead}-123"),
            format!("contend-gateway-{mine}-456"),
            "contend-notes".to_string(),
            format!("other-nginx-{dead}-1"),
        ];
        for name in &names {
            std::fs::create_dir(temp.path().join(name)).unwrap();
        }
        let removed = clean_stale(temp.path());
        assert_eq!(removed, vec![temp.path().join(&names[0])]);
        for name in &names[1..] {
            assert!(temp.path().join(name).exists(), "{name} was removed");
        }
        assert_eq!(owner_pid("contend-gateway-12-34"), Some(12));
        assert_eq!(owner_pid("contend-gateway-x-34"), None);
    }
}
