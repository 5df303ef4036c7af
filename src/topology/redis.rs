//! Redis as a component: the store the reference gateway keeps its rate
//! limits in when `[store] kind = "redis"`. `redis-server` from the PATH,
//! on a free loopback port picked here, with persistence off (`--save ""
//! --appendonly no`), in a folder of its own; ready once it answers PING.
//! Its own metrics come from `INFO`: commands per second, clients, keys,
//! memory. It can be started again on the same port after a kill (a
//! `[[faults]]` restart), so the gateways' connections find it again.
//!
//! Takes a validated [`StoreSpec`]; hands on a running [`RedisStore`].

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use super::READY_TIMEOUT;
use super::child::ChildGuard;
use super::component::Component;
use super::program;
use super::telemetry::Metric;
use super::workdir::WorkDir;
use crate::error::{Error, Result};
use crate::scenario::StoreSpec;

/// Ports tried before giving up when another process takes the one picked.
const PORT_ATTEMPTS: usize = 3;

/// A running redis-server.
pub struct RedisStore {
    child: ChildGuard,
    binary: PathBuf,
    args: Vec<String>,
    // Dropped after `child`: the folder goes once the process has.
    _dir: WorkDir,
}

/// Finds `redis-server` on the PATH (or in /usr/bin, /usr/sbin); the
/// error names the install command.
pub fn find() -> Result<PathBuf> {
    program::first(
        program::candidates(
            "redis-server",
            &["/usr/bin/redis-server", "/usr/sbin/redis-server"],
        )
        .into_iter(),
        "redis",
        "redis-server is not installed (looked on the PATH, /usr/bin and /usr/sbin): \
         `apt-get install redis-server`, or give [store] url = \"redis://HOST:PORT\" \
         for one that runs",
    )
}

/// Starts redis-server on a free loopback port, retrying on another port
/// when the one picked was taken in between.
pub fn start(spec: &StoreSpec) -> Result<RedisStore> {
    let binary = find()?;
    let dir = WorkDir::new("redis")?;
    let mut last = None;
    for _ in 0..PORT_ATTEMPTS {
        let port = program::free_port("redis")?.port();
        let args = args(port, dir.path(), spec.cpus.as_deref());
        match spawn(&binary, &args, port) {
            Ok(child) => {
                return Ok(RedisStore {
                    child,
                    binary,
                    args,
                    _dir: dir,
                });
            }
            // Only a port taken in between is worth another try.
            Err(e) if e.to_string().contains("Address already in use") => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Runtime("redis: no port could be bound".into())))
}

/// redis-server's command line: loopback only, no persistence, its folder
/// as working directory, and the CPUs when given.
fn args(port: u16, dir: &std::path::Path, cpus: Option<&str>) -> Vec<String> {
    let mut args: Vec<String> = [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
        "--daemonize",
        "no",
        "--dir",
        &dir.display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if let Some(cpus) = cpus {
        args.extend(["--server-cpulist".to_string(), cpus.to_string()]);
    }
    args
}

fn spawn(binary: &std::path::Path, args: &[String], port: u16) -> Result<ChildGuard> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    ChildGuard::spawn_polled("redis", binary, args, addr, READY_TIMEOUT, || {
        command(addr, "PING", Duration::from_millis(200)).is_ok_and(|r| r.starts_with("+PONG"))
    })
}

/// Sends one inline command and reads the reply (whole, for `INFO`'s
/// bulk string) within `within`.
fn command(addr: SocketAddr, line: &str, within: Duration) -> std::result::Result<String, String> {
    let mut stream = TcpStream::connect_timeout(&addr, within).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(within))
        .and_then(|()| stream.set_write_timeout(Some(within)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(format!("{line}\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        if complete(&reply) {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&reply).into_owned())
}

/// True when `reply` holds a whole RESP reply: a simple line, or a bulk
/// string of the length its header gives.
fn complete(reply: &[u8]) -> bool {
    let Some(end) = reply.windows(2).position(|w| w == b"\r\n") else {
        return false;
    };
    if reply.first() != Some(&b'$') {
        return true;
    }
    let len: i64 = String::from_utf8_lossy(&reply[1..end])
        .parse()
        .unwrap_or(-1);
    len < 0 || reply.len() >= end + 2 + len as usize + 2
}

/// `INFO`'s fields in `components.csv`'s names: commands processed
/// (counter), clients, keys, used memory (gauges).
pub fn info_metrics(text: &str) -> std::result::Result<Vec<Metric>, String> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    let number = |name: &str| field(name).and_then(|v| v.parse::<f64>().ok());
    let commands = number("total_commands_processed")
        .ok_or_else(|| format!("not redis INFO output: {:?}", text.lines().next()))?;
    // `db0:keys=12,expires=12,avg_ttl=0`: the keys of every db.
    let keys: f64 = text
        .lines()
        .filter(|l| l.starts_with("db"))
        .filter_map(|l| {
            l.split_once("keys=")?
                .1
                .split(',')
                .next()?
                .parse::<f64>()
                .ok()
        })
        .sum();
    let gauge = |name: &str, value: f64| Metric {
        name: name.into(),
        counter: false,
        value,
    };
    let mut out = vec![
        Metric {
            name: "commands".into(),
            counter: true,
            value: commands,
        },
        gauge("keys", keys),
    ];
    if let Some(v) = number("connected_clients") {
        out.push(gauge("clients", v));
    }
    if let Some(v) = number("used_memory") {
        out.push(gauge("used_memory_bytes", v));
    }
    Ok(out)
}

impl RedisStore {
    /// `redis://127.0.0.1:PORT`, for the gateways.
    pub fn url(&self) -> String {
        format!("redis://{}", self.child.addr)
    }

    /// The commands it has processed so far (`INFO`), for round trips per
    /// request.
    pub fn commands(&self) -> Option<f64> {
        let text = command(self.child.addr, "INFO stats", Duration::from_secs(1)).ok()?;
        info_metrics(&text)
            .ok()?
            .into_iter()
            .find(|m| m.name == "commands")
            .map(|m| m.value)
    }
}

impl Component for RedisStore {
    fn child(&self) -> &ChildGuard {
        &self.child
    }

    fn child_mut(&mut self) -> &mut ChildGuard {
        &mut self.child
    }

    fn own_metrics(&self, within: Duration) -> Option<Result<Vec<Metric>, String>> {
        Some(command(self.child.addr, "INFO", within).and_then(|text| info_metrics(&text)))
    }

    fn restart(&mut self) -> Result<(), String> {
        let port = self.child.addr.port();
        // The old process first: its port must be free.
        self.child.stop_with(libc::SIGKILL, Duration::from_secs(1));
        let child = spawn(&self.binary, &self.args, port).map_err(|e| e.to_string())?;
        self.child = child;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_is_read_into_metrics() {
        let text = "# Stats\r\ntotal_commands_processed:1234\r\nconnected_clients:3\r\n\
                    used_memory:1048576\r\n# Keyspace\r\ndb0:keys=12,expires=12,avg_ttl=0\r\n\
                    db1:keys=3,expires=0,avg_ttl=0\r\n";
        let m = info_metrics(text).expect("parses");
        let get = |n: &str| m.iter().find(|x| x.name == n).map(|x| (x.value, x.counter));
        assert_eq!(get("commands"), Some((1234.0, true)));
        assert_eq!(get("keys"), Some((15.0, false)));
        assert_eq!(get("clients"), Some((3.0, false)));
        assert_eq!(get("used_memory_bytes"), Some((1048576.0, false)));
        assert!(info_metrics("-ERR unknown").is_err());
    }

    #[test]
    fn a_reply_is_whole_when_its_bulk_length_is_read() {
        assert!(complete(b"+PONG\r\n"));
        assert!(!complete(b"$10\r\n12345"));
        assert!(complete(b"$5\r\n12345\r\n"));
        assert!(!complete(b"+PO"));
    }
}
