//! What the programs contend starts from the system (nginx, HAProxy,
//! redis-server) share: where the program is looked for, its version line,
//! the config template, a free loopback port picked for it, whole
//! milliseconds for its config, and the fix for a port taken at start.
//!
//! Takes a program's name, its fallbacks and its own wording; hands on
//! paths, text and [`Error`]s that name the component and the fix.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};

/// Where a component's `program` is looked for: each folder of the PATH,
/// then `fallbacks` (Debian installs servers in /usr/sbin, which is not on
/// every user's PATH).
pub fn candidates(program: &str, fallbacks: &[&str]) -> Vec<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .chain(fallbacks.iter().map(PathBuf::from))
        .collect()
}

/// The first of `candidates` that is a file, or `component`'s error saying
/// `missing` (what to install, or what to do instead).
pub fn first(
    mut candidates: impl Iterator<Item = PathBuf>,
    component: &str,
    missing: &str,
) -> Result<PathBuf> {
    candidates
        .find(|p| p.is_file())
        .ok_or_else(|| Error::Component {
            component: component.into(),
            message: missing.into(),
        })
}

/// The version `read` finds in what `program flag` prints (stdout, then
/// stderr), or `unknown`.
pub fn version(program: &Path, flag: &str, read: fn(&str) -> Option<String>) -> String {
    std::process::Command::new(program)
        .arg(flag)
        .output()
        .ok()
        .and_then(|o| {
            let out = String::from_utf8_lossy(&o.stdout);
            let err = String::from_utf8_lossy(&o.stderr);
            read(&out).or_else(|| read(&err))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The template's text: the file `path` when given, else `embedded`.
pub fn template(path: Option<&Path>, embedded: &str) -> Result<String> {
    match path {
        Some(path) => std::fs::read_to_string(path).map_err(|e| Error::io(path, e)),
        None => Ok(embedded.to_string()),
    }
}

/// A loopback port free now, for a `component` that takes no port 0 and
/// prints no address. Another process could take it before the component
/// binds; the component's bind failure then says so (see
/// [`explain_port_taken`]).
pub fn free_port(component: &str) -> Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| Error::Runtime(format!("no free port for {component}: {e}")))
}

/// A config's time: whole milliseconds, at least 1 (0 would mean none).
pub fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}

/// A start failure whose stderr says a port was taken gets the fix: the
/// program binds at start (its config check does not), to the port contend
/// picked at `listen` (its stderr then holds `ours`) or to another one the
/// template's `directive` names.
pub fn explain_port_taken(error: Error, listen: SocketAddr, ours: &str, directive: &str) -> Error {
    match error {
        Error::Component { component, message } if message.contains("Address already in use") => {
            let fix = if message.contains(ours) {
                format!("another process took {listen} after contend picked it as free: run again")
            } else {
                format!(
                    "a `{directive}` of the template names a port in use (`ss -ltnp` shows which \
                     process holds it): free that port or change it"
                )
            };
            Error::Component {
                component,
                message: format!("{message}\nFix: {fix}"),
            }
        }
        other => other,
    }
}

/// Runs `program`'s config check (`args`, no stdin): passes, or gives the
/// error `failure` makes of what it printed on stderr.
pub fn check_config(
    component: &str,
    program: &Path,
    args: &[String],
    failure: impl FnOnce(&str) -> Error,
) -> Result<()> {
    let output = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::Component {
            component: component.into(),
            message: format!(
                "could not run `{} {}`: {e}",
                program.display(),
                args.join(" ")
            ),
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(failure(&String::from_utf8_lossy(&output.stderr)))
}

/// `; line N of the rendered config is `...``, for the line `n` a config
/// check named in `text` (nothing when it named none, or none there is).
pub fn rendered_line(text: &str, n: Option<usize>) -> String {
    n.and_then(|n| text.lines().nth(n.checked_sub(1)?).map(|l| (n, l.trim())))
        .map(|(n, l)| format!("; line {n} of the rendered config is `{l}`"))
        .unwrap_or_default()
}

/// The fix for a config check that failed: mend the user's `template`, or
/// (the embedded template failed) `embedded`.
pub fn template_fix(template: Option<&Path>, embedded: &str) -> String {
    match template {
        Some(path) => format!(
            "fix the template {} ([gateway] template), or drop `template` to use the embedded one",
            path.display()
        ),
        None => embedded.to_string(),
    }
}
