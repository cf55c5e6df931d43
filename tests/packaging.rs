//! The shipped packaging files, checked with the tools that judge them.

/// The systemd unit's sandboxing, as `systemd-analyze security` scores it offline
/// (0 = fully locked down, 10 = none): at most 2.0 (issue 14's target; it was 4.3).
#[test]
fn the_systemd_unit_is_locked_down() {
    let unit = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/confab.service");
    let dir = tempfile::tempdir().unwrap();
    // The analyzer names the service after the file.
    let copy = dir.path().join("confab.service");
    std::fs::copy(&unit, &copy).unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&copy)
        .output()
        .expect("systemd-analyze is installed (Debian: systemd)");
    let report = String::from_utf8_lossy(&out.stdout);
    let level: f64 = report
        .lines()
        .find_map(|l| l.split("Overall exposure level for confab.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}\n{}", String::from_utf8_lossy(&out.stderr)));
    assert!(level <= 2.0, "exposure {level} > 2.0:\n{report}");
}
