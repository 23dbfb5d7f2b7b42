//! `tamper-check` against real processes: a Node inspector, a process whose
//! command line carries `--remote-debugging-port`, and clean processes.
//! Needs Linux and Node on the PATH.
#![cfg(target_os = "linux")]

mod ledger_support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ledger_support::{path_str, verifier_bin};
use midcore_verifier::json::Value;
use midcore_verifier::ledger::replay;
use midcore_verifier::tamper::{Check, check_process};

/// A child process that is killed when the test ends, pass or fail.
struct Target(Child);

impl Target {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `node --inspect=127.0.0.1:0` and waits until its inspector listens.
fn node_inspector() -> Target {
    let mut child = Command::new("node")
        .args(["--inspect=127.0.0.1:0", "-e", "setInterval(() => {}, 1000)"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("Node must be installed");
    let stderr = child.stderr.take().expect("piped stderr");
    let target = Target(child);
    let mut lines = BufReader::new(stderr).lines();
    let listening =
        lines.any(|line| line.is_ok_and(|line| line.starts_with("Debugger listening on ws://")));
    assert!(listening, "node did not start its inspector");
    target
}

/// Starts a process whose command line is rewritten to carry `switch` (as `exec -a` does).
fn process_with_switch(switch: &str) -> Target {
    let script = format!("exec -a 'fakeapp {switch}' sleep 60");
    let child = Command::new("bash")
        .args(["-c", &script])
        .stdin(Stdio::null())
        .spawn()
        .expect("start bash");
    let target = Target(child);
    wait_for_cmdline(target.pid(), switch);
    target
}

fn wait_for_cmdline(pid: u32, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(needle) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("process {pid} never showed {needle:?} in its command line");
}

fn tamper_check(args: &[&str]) -> Output {
    Command::new(verifier_bin())
        .arg("tamper-check")
        .args(args)
        .output()
        .expect("run midcore-verify")
}

#[test]
fn node_inspector_switch_found() {
    let node = node_inspector();
    let report = check_process(node.pid()).expect("check the node process");
    assert!(
        report
            .findings
            .iter()
            .any(|finding| finding.check == Check::CommandLineSwitch),
        "{report:?}"
    );
}

#[test]
fn node_inspector_endpoint_found() {
    let node = node_inspector();
    let report = check_process(node.pid()).expect("check the node process");
    let endpoint = report
        .findings
        .iter()
        .find(|finding| finding.check == Check::DebugEndpoint);
    assert!(
        endpoint.is_some_and(|finding| finding.detail.contains("Node inspector")),
        "{report:?}"
    );
}

#[test]
fn remote_debugging_port_found() {
    let target = process_with_switch("--remote-debugging-port=0");
    let output = tamper_check(&["--pid", &target.pid().to_string()]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("--remote-debugging-port=0"));
}

#[test]
fn clean_process_passes() {
    let target = Target(
        Command::new("sleep")
            .arg("60")
            .stdin(Stdio::null())
            .spawn()
            .expect("start sleep"),
    );
    wait_for_cmdline(target.pid(), "sleep");
    let output = tamper_check(&["--pid", &target.pid().to_string()]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn plain_http_listener_not_flagged() {
    let script = "require('http').createServer((q, s) => s.end('{}')).listen(0, '127.0.0.1', () => console.log('ready'))";
    let mut child = Command::new("node")
        .args(["-e", script])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("Node must be installed");
    let stdout = child.stdout.take().expect("piped stdout");
    let target = Target(child);
    assert!(
        BufReader::new(stdout)
            .lines()
            .any(|line| line.is_ok_and(|line| line == "ready"))
    );
    let report = check_process(target.pid()).expect("check the node process");
    assert!(report.findings.is_empty(), "{report:?}");
}

#[test]
fn environment_switches_found() {
    let child = Command::new("sleep")
        .arg("60")
        .env("NODE_OPTIONS", "--require /tmp/hook.js")
        .env("ELECTRON_RUN_AS_NODE", "1")
        .stdin(Stdio::null())
        .spawn()
        .expect("start sleep");
    let target = Target(child);
    // Until `exec` completes, /proc shows the test's own environment.
    wait_for_cmdline(target.pid(), "sleep");
    let report = check_process(target.pid()).expect("check the process");
    let mut checks: Vec<&str> = report
        .findings
        .iter()
        .map(|finding| finding.check.as_str())
        .collect();
    checks.sort_unstable();
    assert_eq!(checks, vec!["electron-run-as-node", "node-options"]);
}

#[test]
fn missing_process_exits_2() {
    // Process ids above the kernel's pid_max (at most 2^22) never exist.
    let output = tamper_check(&["--pid", "4294967295"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn findings_recorded_in_ledger() {
    let node = node_inspector();
    let dir = tempfile::tempdir().expect("temporary directory");
    let ledger = dir.path().join("app.ledger");
    let output = tamper_check(&[
        "--pid",
        &node.pid().to_string(),
        "--ledger",
        path_str(&ledger),
        "--project",
        "app",
        "--json",
    ]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let mut checks = Vec::new();
    replay(&ledger, None, &mut |entry| {
        if entry.kind() == "tamper-finding"
            && let Value::Object(body) = entry.body()
            && let Some(Value::String(check)) = body.get("check")
        {
            checks.push(check.clone());
        }
    })
    .expect("the ledger verifies");
    assert_eq!(checks, vec!["command-line-switch", "debug-endpoint"]);
}
