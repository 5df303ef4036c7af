//! A control group of its own for the component under test: a CPU quota
//! (CFS bandwidth, as Kubernetes CPU limits are) and a memory limit, with
//! cgroup v2 where it holds the controllers and v1 otherwise (one group per
//! controller hierarchy).
//!
//! Takes [`Limits`]; hands on a [`Cgroup`] that component processes are
//! moved into ([`Cgroup::admit_group`]) and whose throttling and memory are
//! read per interval ([`Cgroup::stat`]). Each group is created under the
//! cgroup `contend` itself runs in (so it stays inside any limit set on
//! `contend`), is named `contend-<pid>-<n>`, and is removed when its
//! [`Cgroup`] drops; the second Ctrl-C's exit-at-once path removes what is
//! left with [`remove_all`], and groups of runs that were killed outright
//! are removed at the next start. Where a group cannot be made, the error
//! says why and what would work instead.
//!
//! A CPU set stays what it was: the mock upstream pins its own threads, so
//! it needs no cgroup.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::child::group_members;
use crate::error::{Error, Result};

/// The CFS period quotas are set against, us: the kernel's default, and
/// what Kubernetes uses.
const PERIOD_US: u64 = 100_000;
/// How long removal waits for the last processes of a group to leave it.
const REMOVE_WAIT: Duration = Duration::from_millis(1500);
/// Rounds of moving a process group's members in, for members forked
/// while they were being moved.
const ADMIT_ROUNDS: usize = 20;
/// What every group's name starts with.
const PREFIX: &str = "contend-";

/// Groups alive now, for the exit-at-once path.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Groups made by this process so far, for unique names.
static MADE: AtomicU32 = AtomicU32::new(0);

/// What a group limits.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    /// CPU quota in cores (1.5: 150 ms of CPU per 100 ms period).
    pub cpus: Option<f64>,
    /// Memory limit, bytes.
    pub memory_bytes: Option<u64>,
}

impl Limits {
    /// True when there is nothing to limit.
    pub fn is_empty(&self) -> bool {
        self.cpus.is_none() && self.memory_bytes.is_none()
    }
}

/// A group's counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CgroupStat {
    /// CFS periods in which the group had runnable work.
    pub periods: u64,
    /// Of those, the periods in which its quota ran out (it was throttled).
    pub throttled_periods: u64,
    /// Time its threads spent throttled, s (summed over CPUs).
    pub throttled_s: f64,
    /// Memory charged to it now, bytes (with the memory limit).
    pub memory_bytes: Option<u64>,
    /// Processes in it the kernel killed for memory (with the memory limit,
    /// where the kernel counts them).
    pub oom_kills: Option<u64>,
}

/// Which cgroup version a group is made with.
#[derive(Debug, Clone, PartialEq)]
enum Layout {
    /// One folder in the unified hierarchy.
    V2(PathBuf),
    /// One folder per controller hierarchy (`cpu`, `memory`).
    V1 {
        cpu: Option<PathBuf>,
        memory: Option<PathBuf>,
    },
}

/// A control group this process made; removed when dropped.
#[derive(Debug)]
pub struct Cgroup {
    layout: Layout,
    limits: Limits,
}

/// Where a cgroup hierarchy is mounted and which part of it is ours.
#[derive(Debug, Clone, PartialEq)]
struct Mount {
    /// `cgroup2`, or the v1 controllers it holds (`cpu`, `cpu,cpuacct`).
    controllers: Vec<String>,
    /// True for the unified (v2) hierarchy.
    unified: bool,
    /// Where it is mounted.
    point: PathBuf,
    /// The folder of the hierarchy mounted there (`/` on a host).
    root: String,
}

impl Cgroup {
    /// Makes a group with `limits` under `contend`'s own cgroup, or says
    /// why it cannot be made here.
    pub fn create(limits: Limits) -> Result<Cgroup> {
        clean_stale();
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let mounts = parse_mountinfo(&mountinfo);
        let name = format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed) + 1
        );
        let layout = plan(&mounts, &own, &limits, &name).map_err(refused)?;
        let group = Cgroup { layout, limits };
        for dir in group.dirs() {
            std::fs::create_dir(dir)
                .map_err(|e| refused(format!("cannot create {}: {e}", dir.display())))?;
            if let Ok(mut live) = LIVE.lock() {
                live.push(dir.clone());
            }
        }
        // From here on the group's drop removes what was made.
        group.write_limits()?;
        Ok(group)
    }

    /// The group's folders, one per hierarchy.
    fn dirs(&self) -> Vec<&PathBuf> {
        match &self.layout {
            Layout::V2(dir) => vec![dir],
            Layout::V1 { cpu, memory } => cpu.iter().chain(memory.iter()).collect(),
        }
    }

    /// The folder that holds the CPU controller's files.
    fn cpu_dir(&self) -> Option<&PathBuf> {
        match &self.layout {
            Layout::V2(dir) => Some(dir),
            Layout::V1 { cpu, .. } => cpu.as_ref(),
        }
    }

    /// The folder that holds the memory controller's files.
    fn memory_dir(&self) -> Option<&PathBuf> {
        match &self.layout {
            Layout::V2(dir) => self.limits.memory_bytes.map(|_| dir),
            Layout::V1 { memory, .. } => memory.as_ref(),
        }
    }

    /// Where the group is, for messages: its first folder.
    pub fn path(&self) -> &Path {
        self.dirs().first().map_or(Path::new("/"), |d| d.as_path())
    }

    fn write_limits(&self) -> Result<()> {
        let write = |dir: &Path, file: &str, value: String| {
            let path = dir.join(file);
            std::fs::write(&path, &value)
                .map_err(|e| refused(format!("cannot write {value:?} to {}: {e}", path.display())))
        };
        let v2 = matches!(self.layout, Layout::V2(_));
        if let (Some(cores), Some(dir)) = (self.limits.cpus, self.cpu_dir()) {
            let quota_us = quota_us(cores);
            if v2 {
                write(dir, "cpu.max", format!("{quota_us} {PERIOD_US}"))?;
            } else {
                write(dir, "cpu.cfs_period_us", PERIOD_US.to_string())?;
                write(dir, "cpu.cfs_quota_us", quota_us.to_string())?;
            }
        }
        if let (Some(bytes), Some(dir)) = (self.limits.memory_bytes, self.memory_dir()) {
            let file = if v2 {
                "memory.max"
            } else {
                "memory.limit_in_bytes"
            };
            write(dir, file, bytes.to_string())?;
        }
        Ok(())
    }

    /// Moves every process of group `pgid` (a component) into the group;
    /// processes it forks later are born in it. Members forked while they
    /// are moved are caught by going round again.
    pub fn admit_group(&self, pgid: u32) -> Result<()> {
        for _ in 0..ADMIT_ROUNDS {
            let outside: Vec<u32> = group_members(pgid)
                .into_iter()
                .filter(|&pid| !self.holds(pid))
                .collect();
            if outside.is_empty() {
                return Ok(());
            }
            for pid in outside {
                for dir in self.dirs() {
                    let procs = dir.join("cgroup.procs");
                    match std::fs::write(&procs, pid.to_string()) {
                        Ok(()) => {}
                        // Gone in between: nothing to move.
                        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
                        Err(e) => {
                            return Err(refused(format!(
                                "cannot move process {pid} into {}: {e}",
                                procs.display()
                            )));
                        }
                    }
                }
            }
        }
        Err(refused(format!(
            "process group {pgid} kept forking processes outside {}",
            self.path().display()
        )))
    }

    /// True when process `pid` is in every folder of the group.
    fn holds(&self, pid: u32) -> bool {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
            // Gone: nothing left to move.
            return true;
        };
        let name = self.name();
        // Each line ends with the process's cgroup path in one hierarchy.
        let inside = text
            .lines()
            .filter(|l| l.rsplit('/').next() == Some(name))
            .count();
        inside >= self.dirs().len()
    }

    /// The group's name, `contend-<pid>-<n>`.
    fn name(&self) -> &str {
        self.path()
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
    }

    /// Its throttling and memory now.
    pub fn stat(&self) -> CgroupStat {
        let read = |dir: &Path, file: &str| std::fs::read_to_string(dir.join(file)).ok();
        let v2 = matches!(self.layout, Layout::V2(_));
        let mut stat = self
            .cpu_dir()
            .and_then(|d| read(d, "cpu.stat"))
            .map(|text| parse_cpu_stat(&text))
            .unwrap_or_default();
        if let Some(dir) = self.memory_dir() {
            let (current, events) = if v2 {
                ("memory.current", "memory.events")
            } else {
                ("memory.usage_in_bytes", "memory.oom_control")
            };
            stat.memory_bytes = read(dir, current).and_then(|t| t.trim().parse().ok());
            stat.oom_kills = read(dir, events).and_then(|t| keyed(&t, "oom_kill"));
        }
        stat
    }

    /// The quota, as `cpu.max` would say it, for messages.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(cores) = self.limits.cpus {
            parts.push(format!(
                "CPU quota {} us per {PERIOD_US} us ({cores} cores)",
                quota_us(cores)
            ));
        }
        if let Some(bytes) = self.limits.memory_bytes {
            parts.push(format!("memory limit {bytes} bytes"));
        }
        format!("{} in {}", parts.join(", "), self.path().display())
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let dirs: Vec<PathBuf> = self.dirs().into_iter().cloned().collect();
        remove_dirs(&dirs);
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|d| !dirs.contains(d));
        }
    }
}

/// Removes every group still alive (the second Ctrl-C's path, after the
/// children were stopped): their exited processes are reaped first, since
/// a zombie keeps its group from being removed.
pub fn remove_all() {
    crate::sys::reap_exited_children();
    let dirs = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
    remove_dirs(&dirs);
}

/// The groups alive now (for tests of the exit paths).
pub fn live() -> Vec<PathBuf> {
    LIVE.lock().map(|l| l.clone()).unwrap_or_default()
}

/// Removes `dirs` (a cgroup folder is removed with `rmdir`, its files are
/// the kernel's), waiting a little for processes that are still leaving.
fn remove_dirs(dirs: &[PathBuf]) {
    let deadline = Instant::now() + REMOVE_WAIT;
    for dir in dirs {
        while dir.exists() && std::fs::remove_dir(dir).is_err() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Removes the groups of runs whose process is gone (killed outright, so
/// nothing of theirs removed them), in every hierarchy `contend` is in.
/// Returns what was removed.
pub fn clean_stale() -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut removed = Vec::new();
    for mount in parse_mountinfo(&mountinfo) {
        let Some(parent) = own_dir(&mount, &own) else {
            continue;
        };
        let Ok(entries) = std::fs::read_dir(&parent) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(owner_pid) else {
                continue;
            };
            let alive = Path::new(&format!("/proc/{pid}")).exists();
            if !alive && std::fs::remove_dir(entry.path()).is_ok() {
                removed.push(entry.path());
            }
        }
    }
    removed
}

/// The PID in a group name `contend-<pid>-<n>`, if it is one.
fn owner_pid(name: &str) -> Option<u32> {
    let (pid, n) = name.strip_prefix(PREFIX)?.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(n))
        .then(|| pid.parse().ok())
        .flatten()
}

/// A quota in us per period for `cores` (at least 1 ms, the kernel's floor).
fn quota_us(cores: f64) -> u64 {
    ((cores * PERIOD_US as f64).round() as u64).max(1000)
}

/// The error for a group that cannot be made, with what to do instead.
fn refused(why: String) -> Error {
    Error::Usage(format!(
        "a CPU quota or memory limit needs a cgroup contend can create, and {why}; run as root \
         on a host with the cpu (and memory) controllers, or use {{ cpuset = \"1\" }} classes, \
         which pin the mock upstream without a cgroup"
    ))
}

/// The cgroup folders mounted on this host, from `/proc/self/mountinfo`.
fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        // `ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER`
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let left: Vec<&str> = left.split_whitespace().collect();
        let right: Vec<&str> = right.split_whitespace().collect();
        let (Some(root), Some(point), Some(fstype)) = (left.get(3), left.get(4), right.first())
        else {
            continue;
        };
        let unified = *fstype == "cgroup2";
        if !unified && *fstype != "cgroup" {
            continue;
        }
        let controllers = if unified {
            Vec::new()
        } else {
            right
                .get(2)
                .map(|o| {
                    o.split(',')
                        .filter(|c| !matches!(*c, "rw" | "ro") && !c.contains('='))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        mounts.push(Mount {
            controllers,
            unified,
            point: PathBuf::from(unescape(point)),
            root: unescape(root),
        });
    }
    mounts
}

/// mountinfo escapes spaces and the like as `\040`.
fn unescape(field: &str) -> String {
    field
        .replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The folder of `contend`'s own cgroup in `mount`, from `/proc/self/cgroup`
/// (`ID:CONTROLLERS:PATH` lines; `0::PATH` for the unified hierarchy).
fn own_dir(mount: &Mount, own: &str) -> Option<PathBuf> {
    let path = own.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (id, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let matches = if mount.unified {
            id == "0" && controllers.is_empty()
        } else {
            let listed: Vec<&str> = controllers.split(',').collect();
            !mount.controllers.is_empty()
                && mount
                    .controllers
                    .iter()
                    .all(|c| listed.contains(&c.as_str()))
        };
        matches.then(|| path.to_string())
    })?;
    // The part of the path below the mount's root is what the mount shows.
    let below = path
        .strip_prefix(mount.root.trim_end_matches('/'))
        .unwrap_or(&path);
    Some(mount.point.join(below.trim_start_matches('/')))
}

/// Where a group named `name` goes for `limits`: the unified hierarchy
/// when it offers every controller needed, else the v1 hierarchies.
fn plan(mounts: &[Mount], own: &str, limits: &Limits, name: &str) -> Result<Layout, String> {
    let mut needed = Vec::new();
    if limits.cpus.is_some() {
        needed.push("cpu");
    }
    if limits.memory_bytes.is_some() {
        needed.push("memory");
    }
    if let Some(v2) = mounts.iter().find(|m| m.unified)
        && let Some(dir) = own_dir(v2, own)
        && let Some(parent) = v2_parent(&v2.point, &dir, &needed)
    {
        return Ok(Layout::V2(parent.join(name)));
    }
    let v1 = |controller: &str| -> Result<Option<PathBuf>, String> {
        if !needed.contains(&controller) {
            return Ok(None);
        }
        let mount = mounts
            .iter()
            .find(|m| !m.unified && m.controllers.iter().any(|c| c == controller))
            .ok_or_else(|| {
                format!(
                    "no cgroup hierarchy here has the {controller} controller (neither cgroup v2 \
                     with it enabled nor a v1 mount of it in /proc/self/mountinfo)"
                )
            })?;
        let dir = own_dir(mount, own).ok_or_else(|| {
            format!("contend's own {controller} cgroup is not in /proc/self/cgroup")
        })?;
        Ok(Some(dir.join(name)))
    };
    Ok(Layout::V1 {
        cpu: v1("cpu")?,
        memory: v1("memory")?,
    })
}

/// The v2 folder to make a group in, beside `contend`'s own (`own`), when
/// it offers every controller in `needed`: a group that holds processes
/// cannot also hand controllers to children (v2's "no internal processes"
/// rule), so the group goes in the parent, which does; at the root,
/// which is exempt, the controllers are enabled first. `None` when the
/// controllers are not there.
fn v2_parent(point: &Path, own: &Path, needed: &[&str]) -> Option<PathBuf> {
    let available = std::fs::read_to_string(point.join("cgroup.controllers")).ok()?;
    if !needed
        .iter()
        .all(|c| available.split_whitespace().any(|a| a == *c))
    {
        return None;
    }
    let parent = if own == point {
        point.to_path_buf()
    } else {
        own.parent()?.to_path_buf()
    };
    let enabled = std::fs::read_to_string(parent.join("cgroup.subtree_control")).ok()?;
    let missing: Vec<String> = needed
        .iter()
        .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if !missing.is_empty() {
        std::fs::write(parent.join("cgroup.subtree_control"), missing.join(" ")).ok()?;
    }
    Some(parent)
}

/// `cpu.stat` of either version: `nr_periods`, `nr_throttled`, and
/// `throttled_time` in ns (v1) or `throttled_usec` (v2).
fn parse_cpu_stat(text: &str) -> CgroupStat {
    let throttled_s = keyed(text, "throttled_usec")
        .map(|us| us as f64 / 1e6)
        .or_else(|| keyed(text, "throttled_time").map(|ns| ns as f64 / 1e9))
        .unwrap_or(0.0);
    CgroupStat {
        periods: keyed(text, "nr_periods").unwrap_or(0),
        throttled_periods: keyed(text, "nr_throttled").unwrap_or(0),
        throttled_s,
        memory_bytes: None,
        oom_kills: None,
    }
}

/// The number after `key ` in a `key value` per line file.
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn v1_groups_go_under_contends_own_group_per_controller() {
        let mounts = parse_mountinfo(HYBRID);
        assert_eq!(mounts.len(), 4);
        assert_eq!(mounts[0].controllers, ["cpu"]);
        assert!(mounts[3].unified);
        let own = "4:memory:/jobs/a1\n1:cpu:/\n0::/\n";
        let limits = Limits {
            cpus: Some(1.5),
            memory_bytes: Some(1 << 30),
        };
        // The unified mount here has no cpu controller: v1 it is.
        let layout = plan(&mounts, own, &limits, "contend-7-1").unwrap();
        assert_eq!(
            layout,
            Layout::V1 {
                cpu: Some("/sys/fs/cgroup/cpu/contend-7-1".into()),
                memory: Some("/sys/fs/cgroup/memory/jobs/a1/contend-7-1".into()),
            }
        );
        let cpu_only = Limits {
            cpus: Some(1.0),
            memory_bytes: None,
        };
        let layout = plan(&mounts, own, &cpu_only, "contend-7-2").unwrap();
        assert_eq!(
            layout,
            Layout::V1 {
                cpu: Some("/sys/fs/cgroup/cpu/contend-7-2".into()),
                memory: None,
            }
        );
        // No memory controller mounted: the reason names it.
        let no_memory: Vec<Mount> = mounts
            .iter()
            .filter(|m| m.controllers != ["memory"])
            .cloned()
            .collect();
        let why = plan(&no_memory, own, &limits, "x").unwrap_err();
        assert!(why.contains("memory controller"), "{why}");
    }

    #[test]
    fn v2_groups_go_beside_contends_own_with_the_controllers_enabled() {
        // A unified hierarchy laid out in a folder: contend in /jobs/run,
        // whose parent hands on cpu but not yet memory.
        let root = tempfile::tempdir().unwrap();
        let point = root.path();
        std::fs::write(
            point.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        std::fs::create_dir_all(point.join("jobs/run")).unwrap();
        std::fs::write(point.join("jobs/cgroup.subtree_control"), "cpu\n").unwrap();
        let mountinfo = format!(
            "30 23 0:26 / {} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
            point.display()
        );
        let mounts = parse_mountinfo(&mountinfo);
        let limits = Limits {
            cpus: Some(1.0),
            memory_bytes: Some(256 << 20),
        };
        let layout = plan(&mounts, "0::/jobs/run\n", &limits, "contend-9-1").unwrap();
        assert_eq!(layout, Layout::V2(point.join("jobs/contend-9-1")));
        // memory was enabled for the parent's children.
        let enabled = std::fs::read_to_string(point.join("jobs/cgroup.subtree_control")).unwrap();
        assert_eq!(enabled, "+memory");
        // A unified hierarchy without the cpu controller is no use: v1 then,
        // and with no v1 cpu mount the reason says so.
        std::fs::write(point.join("cgroup.controllers"), "memory pids\n").unwrap();
        let why = plan(&mounts, "0::/jobs/run\n", &limits, "x").unwrap_err();
        assert!(why.contains("cpu controller"), "{why}");
    }

    #[test]
    fn a_mount_of_a_subtree_maps_the_path_below_its_root() {
        // In a container the hierarchy's folder /docker/abc is mounted at
        // /sys/fs/cgroup/cpu, and /proc/self/cgroup still says /docker/abc.
        let mounts = parse_mountinfo(
            "32 31 0:29 /docker/abc /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu,cpuacct\n",
        );
        assert_eq!(mounts[0].controllers, ["cpu", "cpuacct"]);
        let dir = own_dir(&mounts[0], "3:cpu,cpuacct:/docker/abc/sub\n").unwrap();
        assert_eq!(dir, PathBuf::from("/sys/fs/cgroup/cpu/sub"));
    }

    #[test]
    fn cpu_stat_of_either_version_reads_the_throttling() {
        let v1 = "nr_periods 40\nnr_throttled 12\nthrottled_time 350000000\nnr_bursts 0\n";
        let v2 = "usage_usec 9\nuser_usec 5\nsystem_usec 4\nnr_periods 40\nnr_throttled 12\nthrottled_usec 350000\n";
        for text in [v1, v2] {
            let stat = parse_cpu_stat(text);
            assert_eq!((stat.periods, stat.throttled_periods), (40, 12), "{text}");
            assert!((stat.throttled_s - 0.35).abs() < 1e-9, "{text}");
        }
        assert_eq!(quota_us(1.5), 150_000);
        assert_eq!(quota_us(0.001), 1000);
    }

    #[test]
    fn only_names_of_contend_groups_have_an_owner() {
        assert_eq!(owner_pid("contend-123-4"), Some(123));
        for other in ["contend-123", "contend-x-1", "system.slice", "contend--1"] {
            assert_eq!(owner_pid(other), None, "{other}");
        }
    }
}
