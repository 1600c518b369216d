//! Prometheus for real: the shipped rules pass `promtool check` and their
//! unit tests, a real Prometheus server (Debian's `prometheus` package)
//! scrapes a running voltgate and sees the connected station and a counter
//! moving after OCPP traffic, and every metric `/metrics` exposes is in the
//! README's table with its labels. Skipped, saying so, where Prometheus is
//! not installed (`.ci/run` installs it).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::client::connect;
use crate::metrics::scrape;
use crate::registered;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus")
}

/// The path of `tool`, or None (said loudly) when it is not installed.
fn installed(tool: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(tool))
            .find(|path| path.is_file())
    });
    if found.is_none() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: {tool} is not installed (Debian package prometheus): the Prometheus tests did not run"
        );
    }
    found
}

fn run(tool: &Path, args: &[&str]) {
    let out = Command::new(tool)
        .args(args)
        .current_dir(deploy_dir())
        .output()
        .expect("tool runs");
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{}{}",
        tool.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_shipped_rules_and_configuration_pass_promtool() {
    let Some(promtool) = installed("promtool") else {
        return;
    };
    run(&promtool, &["check", "rules", "voltgate.rules.yml"]);
    run(&promtool, &["check", "config", "prometheus.yml"]);
    run(&promtool, &["test", "rules", "voltgate.rules.test.yml"]);
}

/// One instant query to Prometheus's HTTP API: the first sample's value.
async fn query(prometheus: &str, expr: &str) -> Option<f64> {
    let url = format!("{prometheus}/api/v1/query");
    let mut response = awc::Client::default()
        .get(url)
        .query(&[("query", expr)])
        .ok()?
        .send()
        .await
        .ok()?;
    let body: Value = response.json().await.ok()?;
    body["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
}

async fn eventually(prometheus: &str, expr: &str, ok: impl Fn(f64) -> bool) -> f64 {
    let mut last = None;
    for _ in 0..150 {
        last = query(prometheus, expr).await;
        if let Some(value) = last.filter(|v| ok(*v)) {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("Prometheus never answered {expr} as expected; last {last:?}");
}

#[actix_web::test]
async fn a_real_prometheus_scrapes_voltgate_and_sees_traffic() {
    let Some(prometheus_bin) = installed("prometheus") else {
        return;
    };
    let s = registered("PROM1").await;
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("prometheus.yml");
    let rules = deploy_dir().join("voltgate.rules.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: voltgate\n    static_configs:\n      - targets: [\"{}\"]\n",
            rules.display(),
            s.app.api_addr()
        ),
    )
    .expect("config");
    let web = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port");
    let mut server = Command::new(prometheus_bin)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address={web}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts");
    let prometheus = format!("http://{web}");

    let mut cs = connect(s.app.ws_addr(), "PROM1", "ocpp2.0.1").await;
    cs.boot_201().await;
    let up = eventually(&prometheus, "up{job=\"voltgate\"}", |v| v == 1.0).await;
    assert_eq!(up, 1.0);
    eventually(&prometheus, "voltgate:stations_connected:sum", |v| v >= 1.0).await;
    let heartbeats =
        "sum(voltgate_ocpp_messages_received_total{action=\"Heartbeat\",type=\"CALL\"})";
    let before = query(&prometheus, heartbeats).await.unwrap_or(0.0);
    for _ in 0..5 {
        cs.ok("Heartbeat", json!({})).await;
    }
    eventually(&prometheus, heartbeats, |v| v >= before + 5.0).await;
    let _ = server.kill();
    let _ = server.wait();
}

/// The metric families of the README's table, with their label names.
fn documented() -> Vec<(String, Vec<String>)> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let table = readme
        .split("## Metrics")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Metrics section");
    table
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let labels = cells
                .get(3)?
                .split('`')
                .skip(1)
                .step_by(2)
                .map(str::to_owned)
                .collect();
            Some((name.to_owned(), labels))
        })
        .collect()
}

#[actix_web::test]
async fn every_exposed_metric_is_documented_with_its_labels() {
    let s = registered("DOC1").await;
    let mut cs = connect(s.app.ws_addr(), "DOC1", "ocpp1.6").await;
    cs.boot_16().await;
    cs.ok("Heartbeat", json!({})).await;
    let documented = documented();
    assert!(
        documented.len() > 20,
        "the README table was not read: {documented:?}"
    );
    let text = scrape(&s).await;
    for line in text.lines().filter(|l| l.starts_with("voltgate_")) {
        let (series, _) = line.rsplit_once(' ').expect("a sample");
        let (name, labels) = match series.split_once('{') {
            Some((name, labels)) => (name, labels.trim_end_matches('}')),
            None => (series, ""),
        };
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| {
                let base = name.strip_suffix(suffix)?;
                documented.iter().any(|(n, _)| n == base).then_some(base)
            })
            .unwrap_or(name);
        let Some((_, allowed)) = documented.iter().find(|(n, _)| n == family) else {
            panic!("{family} is exposed but not in the README's metrics table");
        };
        for pair in labels.split(',').filter(|p| !p.is_empty()) {
            let key = pair.split('=').next().unwrap_or_default();
            assert!(
                key == "le" || allowed.iter().any(|a| a == key),
                "{family} has label {key}, not in the README (documented: {allowed:?})"
            );
        }
    }
}
