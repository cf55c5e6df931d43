//! Runs a scenario from tests/js with the real npm clients (socket.io-client,
//! playwright-core), bounded so CI never hangs on it.

use std::time::Duration;

/// Runs `node <script>` in tests/js with `env`; fails the test unless it exits 0 and its
/// last stdout line is a JSON report with `"ok": true`, which it returns.
pub async fn run_scenario(script: &str, env: &[(&str, String)], limit: Duration) -> serde_json::Value {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    assert!(
        dir.join("node_modules/socket.io-client").exists() && dir.join("node_modules/playwright-core").exists(),
        "tests/js/node_modules is missing: run `npm ci --prefix tests/js` (packaging/test.sh does)"
    );
    let node = tokio::process::Command::new("node")
        .arg(script)
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(limit, node)
        .await
        .unwrap_or_else(|_| panic!("{script} finished within {limit:?}"))
        .expect("node is installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|_| panic!("{script} printed no JSON report:\n{stdout}\n{stderr}"));
    assert_eq!(report["ok"], true, "{script}: {report}\n{stderr}");
    report
}
