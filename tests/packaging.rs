//! The shipped packaging files, checked with the tools that judge them.

mod common;

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

/// The compose stack as podman-compose (pinned 1.6.0) reads it: valid, every image
/// named in full (podman resolves no short names), both confab instances on one image,
/// and confab waiting for healthy backends.
#[test]
fn the_compose_file_is_valid_for_podman_compose() {
    let tool = common::cached_tool("podman-compose", "podman-compose");
    assert!(tool.exists(), "{} missing: packaging/test.sh installs podman-compose 1.6.0", tool.display());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/compose");
    let out =
        std::process::Command::new(&tool).args(["-f", "compose.yaml", "config"]).current_dir(&dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "podman-compose config failed:\n{stderr}");
    let config = String::from_utf8_lossy(&out.stdout);
    // Services' images (indented under `services:`; the x-confab anchor is printed too).
    let images: Vec<&str> = config.lines().filter_map(|l| l.strip_prefix("    image: ")).collect();
    assert_eq!(images.len(), 6, "{config}");
    for image in &images {
        let registry = image.split('/').next().unwrap_or_default();
        assert!(
            image.contains('/') && (registry.contains('.') || registry == "localhost"),
            "{image} is not fully qualified"
        );
    }
    assert_eq!(images.iter().filter(|i| **i == "localhost/confab:latest").count(), 2, "both instances, one image");
    assert!(config.matches("condition: service_healthy").count() >= 4, "confab waits for healthy backends:\n{config}");
}
