//! The command line: `check` reports file, key and reason; `--help` explains the commands.

use std::process::Command;

fn switchyard(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(args)
        .output()
        .expect("run switchyard")
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write config");
    path.display().to_string()
}

const GOOD: &str = r#"
[[clusters]]
name = "app"
listen = "127.0.0.1:6432"

[[clusters.users]]
name = "app"
password = "app"

[[clusters.nodes]]
addr = "127.0.0.1:5432"
"#;

#[test]
fn check_accepts_a_good_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(&dir, "good.toml", GOOD);
    let o = switchyard(&["check", "--config", &path]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ok"));
}

#[test]
fn check_names_file_key_and_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            GOOD.replace("5432\"", "0\""),
            "clusters[0].nodes[0].addr",
            "no valid port",
        ),
        (
            GOOD.replace("listen = \"127.0.0.1:6432\"", "listen = \"everywhere\""),
            "clusters[0].listen",
            "not an ip:port",
        ),
        (
            GOOD.replace("password = \"app\"", "password = \"app\"\npasword = \"x\""),
            "pasword",
            "unknown field",
        ),
        (
            format!("{GOOD}\n[general]\nstartup_timeout = \"soon\"\n"),
            "startup_timeout",
            "",
        ),
        (
            "[[clusters]]\nname = \"x\"\n".to_string(),
            "listen",
            "missing field",
        ),
    ];
    for (i, (text, key, reason)) in cases.iter().enumerate() {
        let path = write(&dir, &format!("bad{i}.toml"), text);
        let o = switchyard(&["check", "--config", &path]);
        assert_eq!(o.status.code(), Some(2), "case {i}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(&path), "case {i}: no file in {err}");
        assert!(err.contains(key), "case {i}: no key {key} in {err}");
        assert!(
            err.contains(reason),
            "case {i}: no reason {reason} in {err}"
        );
    }
    let o = switchyard(&["check", "--config", "/nonexistent/switchyard.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/switchyard.toml"));
}

#[test]
fn help_explains_run_and_check() {
    let o = switchyard(&["--help"]);
    assert!(o.status.success());
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("run") && text.contains("check"), "{text}");
    let o = switchyard(&["run", "--help"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("--config"));
}

#[test]
fn check_reads_tls_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!("{GOOD}\n[clusters.tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n");
    let path = write(&dir, "tls.toml", &text);
    let o = switchyard(&["check", "--config", &path]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("clusters[0].tls") && err.contains("/nonexistent/cert.pem"),
        "{err}"
    );
}
