use super::*;

const GOOD: &str = r#"
[[clusters]]
name = "app"
listen = "127.0.0.1:6432"
health_check_interval = "200ms"

[[clusters.users]]
name = "app"
password = "secret"

[[clusters.nodes]]
addr = "127.0.0.1:5432"
role = "primary"

[[clusters.nodes]]
name = "r1"
addr = "db-1.example:5432"
weight = 3
"#;

#[test]
fn parses_a_good_config_with_defaults() {
    let c = Config::parse(GOOD, "x.toml").expect("valid");
    let cl = &c.clusters[0];
    assert_eq!(
        cl.health_check_interval,
        std::time::Duration::from_millis(200)
    );
    assert_eq!(cl.nodes[0].name.as_deref(), Some("127.0.0.1:5432"));
    assert_eq!(cl.nodes[1].weight, 3);
    assert_eq!(cl.auth, AuthMethod::ScramSha256);
    assert_eq!(c.general.max_message_bytes, 64 * 1024 * 1024);
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let text = GOOD.replace("weight = 3", "wieght = 3");
    let e = Config::parse(&text, "x.toml")
        .expect_err("unknown key")
        .to_string();
    assert!(e.starts_with("x.toml:"), "{e}");
    assert!(e.contains("wieght"), "{e}");
}

#[test]
fn bad_values_name_the_key() {
    for (from, to, key) in [
        (
            "listen = \"127.0.0.1:6432\"",
            "listen = \"nowhere\"",
            "clusters[0].listen",
        ),
        (
            "addr = \"db-1.example:5432\"",
            "addr = \"db-1.example\"",
            "clusters[0].nodes[1].addr",
        ),
        (
            "weight = 3",
            "weight = 3000000",
            "clusters[0].nodes[1].weight",
        ),
        (
            "name = \"r1\"",
            "name = \"127.0.0.1:5432\"",
            "clusters[0].nodes[1].name",
        ),
    ] {
        let text = GOOD.replace(from, to);
        let e = Config::parse(&text, "x.toml").expect_err(to).to_string();
        assert!(e.contains(key), "{to}: {e}");
    }
}

#[test]
fn bad_duration_is_rejected() {
    let text = GOOD.replace("\"200ms\"", "\"soon\"");
    let e = Config::parse(&text, "x.toml")
        .expect_err("bad duration")
        .to_string();
    assert!(e.contains("health_check_interval"), "{e}");
}

#[test]
fn server_tls_on_a_mysql_cluster_is_refused_with_the_reason() {
    let text = GOOD.replace(
        "health_check_interval = \"200ms\"",
        "health_check_interval = \"200ms\"\nprotocol = \"mysql\"\n\n[clusters.server_tls]\nmode = \"require\"",
    );
    let e = Config::parse(&text, "x.toml")
        .expect_err("no TLS towards MySQL servers yet")
        .to_string();
    assert!(e.contains("clusters[0].server_tls.mode"), "{e}");
    assert!(e.contains("not supported"), "{e}");
}

#[test]
fn metrics_listen_is_checked_like_the_other_addresses() {
    let with = |listen: &str| format!("[metrics]\nlisten = \"{listen}\"\n{GOOD}");
    let c = Config::parse(&with("127.0.0.1:9191"), "x.toml").expect("valid");
    assert_eq!(
        c.metrics.map(|m| m.listen).as_deref(),
        Some("127.0.0.1:9191")
    );
    assert!(Config::parse(GOOD, "x.toml")
        .expect("valid")
        .metrics
        .is_none());
    for (listen, why) in [
        ("localhost", "not an ip:port address"),
        ("127.0.0.1:6432", "used by a cluster"),
    ] {
        let e = Config::parse(&with(listen), "x.toml")
            .expect_err(listen)
            .to_string();
        assert!(
            e.starts_with("x.toml: metrics.listen: ") && e.contains(why),
            "{e}"
        );
    }
    let e = Config::parse(
        &format!("[metrics]\nlisten = \"127.0.0.1:1\"\nport = 2\n{GOOD}"),
        "x.toml",
    )
    .expect_err("unknown key")
    .to_string();
    assert!(e.contains("metrics.port"), "{e}");
}
