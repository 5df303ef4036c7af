//! The Kubernetes manifests (`deploy/kubernetes/`): every kustomization
//! rendered with `kubectl kustomize` and checked against the API's schemas
//! with `kubernetes-validate --strict`; the shard Job's contract (Indexed,
//! parallelism = completions = CONTEND_SHARDS, no retries); and the pods'
//! and the merge Job's commands run here the way the kubelet would start
//! them, with the volumes as local folders and the target on loopback.
//! Both tools are CI's (`.ci/run` installs kubernetes-validate); no cluster
//! and no container engine are needed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::binary::{CONTEND, assert_exit, contend, finish, run, spawn, summary, text};
use crate::util;

/// The folder of the Dockerfile and the kustomizations.
const DEPLOY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/kubernetes");

/// The shard Job's and the merge Job's names in every overlay.
const SHARDS_JOB: &str = "contend-shards";
const MERGE_JOB: &str = "contend-merge";

/// Whether kubectl and kubernetes-validate are installed (the test's name
/// says which test needs them).
fn tools_present(test: &str) -> bool {
    let found = |args: &[&str]| {
        Command::new(args[0])
            .args(&args[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("{}: {e}", args[0]))
            .and_then(|s| {
                s.success()
                    .then_some(())
                    .ok_or_else(|| format!("{}: {s}", args.join(" ")))
            })
    };
    // The client alone: there is no cluster to ask.
    util::component_present(test, found(&["kubectl", "version", "--client"]))
        && util::component_present(test, found(&["kubernetes-validate", "--version"]))
}

/// Every kustomization: the base, each overlay, and the results reader.
fn kustomizations() -> Vec<PathBuf> {
    let deploy = Path::new(DEPLOY);
    let mut dirs = vec![deploy.join("base"), deploy.join("fetch")];
    let mut overlays: Vec<PathBuf> = std::fs::read_dir(deploy.join("overlays"))
        .expect("deploy/kubernetes/overlays")
        .map(|e| e.unwrap().path())
        .collect();
    overlays.sort();
    assert!(
        !overlays.is_empty(),
        "no overlay in deploy/kubernetes/overlays"
    );
    dirs.extend(overlays);
    dirs
}

/// `kubectl kustomize DIR`, as YAML text.
fn render(dir: &Path) -> String {
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The rendered documents as JSON values.
fn documents(yaml: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("rendered YAML parses"))
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} rendered"))
}

fn str_of<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} is not a string in {v:#}"))
}

fn u64_of(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} is not a count in {v:#}"))
}

/// A container's `env` entry `name`.
fn env_entry<'a>(container: &'a Value, name: &str) -> &'a Value {
    container["env"]
        .as_array()
        .and_then(|env| env.iter().find(|e| e["name"] == name))
        .unwrap_or_else(|| panic!("no env {name} in {container:#}"))
}

/// Every kustomization renders, and what it renders passes the Kubernetes
/// API's schemas strictly (an unknown or misplaced field fails).
#[test]
fn every_kustomization_renders_and_passes_strict_schema_validation() {
    if !tools_present("every_kustomization_renders_and_passes_strict_schema_validation") {
        return;
    }
    for dir in kustomizations() {
        let yaml = render(&dir);
        let mut child = Command::new("kubernetes-validate")
            .args(["--strict", "--quiet", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubernetes-validate runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(yaml.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{} does not validate:\n{}{}",
            dir.display(),
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(
            !documents(&yaml).is_empty(),
            "{} renders nothing",
            dir.display()
        );
    }
}

/// The image's user is the one every pod runs as (else the results volume,
/// group-owned by fsGroup, is written by someone else or not at all).
#[test]
fn the_image_user_is_the_pods_user() {
    if !tools_present("the_image_user_is_the_pods_user") {
        return;
    }
    let dockerfile = std::fs::read_to_string(Path::new(DEPLOY).join("Dockerfile")).unwrap();
    let uid: u64 = dockerfile
        .split_once("--uid ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the Dockerfile makes a user with --uid N");
    assert!(
        dockerfile.contains(&format!("USER {uid}:{uid}")),
        "{dockerfile}"
    );
    for dir in kustomizations() {
        for doc in documents(&render(&dir)) {
            let pod = match doc["kind"].as_str() {
                Some("Job") => &doc["spec"]["template"]["spec"],
                Some("Pod") => &doc["spec"],
                _ => continue,
            };
            assert_eq!(u64_of(pod, "/securityContext/runAsUser"), uid, "{doc:#}");
            assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{doc:#}");
        }
    }
}

/// A pod's command line as the kubelet makes it: `$(NAME)` replaced by the
/// container's environment; then each word that is a path under a volume's
/// mount path mapped to the local folder standing for it. A `$(` left over
/// is a variable the pod would not have.
fn kubelet_expand(arg: &str, env: &[(String, String)], mounts: &[(String, PathBuf)]) -> String {
    let mut arg = arg.to_string();
    for (name, value) in env {
        arg = arg.replace(&format!("$({name})"), value);
    }
    assert!(
        !arg.contains("$("),
        "`{arg}`: a variable the pod does not define"
    );
    let local = |word: &str| {
        for (mount, local) in mounts {
            if let Some(rest) = word.strip_prefix(mount.as_str()) {
                if rest.is_empty() || rest.starts_with('/') {
                    return format!("{}{rest}", local.display());
                }
            }
        }
        word.to_string()
    };
    // Words, for a shell command line (`sh -c "contend merge /results/..."`).
    arg.split(' ').map(local).collect::<Vec<_>>().join(" ")
}

/// The volumes of a pod template that the test maps to local folders: the
/// scenario ConfigMap (written out from the render) and the results volume
/// (a ReadWriteMany claim that the render holds).
fn local_mounts(
    docs: &[Value],
    pod: &Value,
    container: &Value,
    dir: &Path,
) -> Vec<(String, PathBuf)> {
    let mut mounts = Vec::new();
    for mount in container["volumeMounts"].as_array().expect("volumeMounts") {
        let name = str_of(mount, "/name");
        let path = str_of(mount, "/mountPath");
        let volume = pod["volumes"]
            .as_array()
            .and_then(|v| v.iter().find(|v| v["name"] == name))
            .unwrap_or_else(|| panic!("no volume {name}"));
        let local = dir.join(name);
        std::fs::create_dir_all(&local).unwrap();
        if let Some(cm) = volume.get("configMap") {
            let map = find(docs, "ConfigMap", str_of(cm, "/name"));
            for (key, body) in map["data"].as_object().expect("ConfigMap data") {
                std::fs::write(local.join(key), body.as_str().unwrap()).unwrap();
            }
        } else {
            let claim = str_of(volume, "/persistentVolumeClaim/claimName");
            let pvc = find(docs, "PersistentVolumeClaim", claim);
            assert!(
                pvc["spec"]["accessModes"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|m| m == "ReadWriteMany")),
                "pods on several nodes share {claim}: {pvc:#}"
            );
        }
        mounts.push((path.to_string(), local));
    }
    mounts
}

/// How many phases the scenario mounted at /scenario has.
fn scenario_phases(mounts: &[(String, PathBuf)]) -> u64 {
    let (_, local) = mounts
        .iter()
        .find(|(m, _)| m == "/scenario")
        .expect("a /scenario mount");
    let body = std::fs::read_to_string(local.join("scenario.toml")).expect("scenario.toml");
    let scenario: toml::Table = body.parse().expect("the scenario is TOML");
    scenario["phases"].as_array().expect("[[phases]]").len() as u64
}

/// Each overlay's shard Job is an Indexed Job of N pods with the shard
/// contract, and its pods' commands, run here as N processes with the
/// environment the Job gives them (the start time from the ConfigMap made
/// at apply time) against a loopback target, write one folder per shard
/// on the results volume; the merge Job's command then merges them into
/// the whole load.
#[test]
fn each_overlays_shard_job_runs_here_and_its_merge_job_merges_the_whole() {
    if !tools_present("each_overlays_shard_job_runs_here_and_its_merge_job_merges_the_whole") {
        return;
    }
    let server = util::http_server(|_| std::time::Duration::ZERO);
    // The overlays side by side: each run waits for its start time.
    std::thread::scope(|scope| {
        for dir in kustomizations() {
            if dir.ends_with("fetch") {
                continue;
            }
            let url = server.url();
            scope.spawn(move || run_overlay_here(&dir, &url));
        }
    });
}

/// The shard Job of the kustomization `dir` checked, its pods' commands run
/// against `target`, then its merge Job's command.
fn run_overlay_here(dir: &Path, target: &str) {
    let docs = documents(&render(dir));
    let job = find(&docs, "Job", SHARDS_JOB);
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed", "{}", dir.display());
    assert_eq!(spec["backoffLimit"], 0, "{}", dir.display());
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never", "{}", dir.display());
    let container = &pod["containers"][0];
    let count: u64 = str_of(env_entry(container, "CONTEND_SHARDS"), "/value")
        .parse()
        .expect("CONTEND_SHARDS is a number");
    assert_eq!(u64_of(spec, "/parallelism"), count, "{}", dir.display());
    assert_eq!(u64_of(spec, "/completions"), count, "{}", dir.display());
    assert!(count >= 2, "{}: a sharded run has shards", dir.display());
    let start_ref = &env_entry(container, "CONTEND_START_AT")["valueFrom"]["configMapKeyRef"];
    assert_eq!(start_ref["name"], "contend-start", "the README's ConfigMap");
    assert_eq!(start_ref["key"], "start-at", "the README's key");

    let tmp = tempfile::tempdir().unwrap();
    let mounts = local_mounts(&docs, pod, container, tmp.path());
    // As the README's `date -u -d '+N min' +%Y-%m-%dT%H:%M:%SZ`.
    let start = (chrono::Utc::now() + chrono::Duration::seconds(2))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let shards: Vec<Child> = (0..count)
        .map(|index| {
            let env = vec![
                ("JOB_COMPLETION_INDEX".to_string(), index.to_string()),
                ("CONTEND_SHARDS".to_string(), count.to_string()),
                ("CONTEND_START_AT".to_string(), start.clone()),
            ];
            let args: Vec<String> = container["args"]
                .as_array()
                .expect("args")
                .iter()
                .map(|a| kubelet_expand(a.as_str().unwrap(), &env, &mounts))
                .collect();
            let mut cmd = contend();
            cmd.args(&args)
                // Loopback, small and short: the one change to the pod's
                // command (the scenario's own rate is a cluster's).
                .args(["--target", target, "--rate", "100", "--duration", "1s"])
                .args(["--arrival", "constant"])
                .envs(env);
            spawn(&mut cmd)
        })
        .collect();
    for shard in shards {
        assert_exit(&finish(shard), 0);
    }
    let results = &mounts
        .iter()
        .find(|(m, _)| m == "/results")
        .expect("a /results mount")
        .1;
    for index in 0..count {
        let s = summary(&results.join(format!("shard-{index}")));
        assert_eq!(u64_of(&s, "/shard/index"), index, "{}", dir.display());
        assert_eq!(u64_of(&s, "/shard/count"), count, "{}", dir.display());
    }

    // The merge Job: created suspended, on the same volume; its shell
    // command with `contend` from this build.
    let merge = find(&docs, "Job", MERGE_JOB);
    assert_eq!(merge["spec"]["suspend"], true, "{}", dir.display());
    let merge_pod = &merge["spec"]["template"]["spec"];
    let merge_container = &merge_pod["containers"][0];
    let merge_mounts = local_mounts(&docs, merge_pod, merge_container, tmp.path());
    let command: Vec<String> = merge_container["command"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(merge_container["args"].as_array().into_iter().flatten())
        .map(|a| kubelet_expand(a.as_str().unwrap(), &[], &merge_mounts))
        .collect();
    let bin_dir = Path::new(CONTEND).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = run(Command::new(&command[0])
        .args(&command[1..])
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null()));
    assert_exit(&out, 0);
    let merged = summary(&results.join("merged"));
    assert_eq!(
        merged["merged"]["shards"].as_array().map(Vec::len),
        Some(count as usize),
        "{}",
        dir.display()
    );
    // The whole load: 100/s for 1 s in each of the scenario's phases,
    // over all the shards, and each shard's summed.
    let phases = scenario_phases(&mounts);
    assert_eq!(
        u64_of(&merged, "/arrivals"),
        100 * phases,
        "{}",
        dir.display()
    );
    let shard_sum: u64 = (0..count)
        .map(|i| u64_of(&summary(&results.join(format!("shard-{i}"))), "/arrivals"))
        .sum();
    assert_eq!(u64_of(&merged, "/arrivals"), shard_sum, "{}", dir.display());
}
