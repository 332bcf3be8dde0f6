use super::*;

const BLACKBOX: &str = r#"
global:
  scrape_interval: 30s
  evaluation_interval: 15s
  external_labels: {region: eu}
rule_files: ["rules/*.yml"]
scrape_configs:
  - job_name: blackbox
    metrics_path: /probe
    params:
      module: [http_2xx]
    static_configs:
      - targets: ['https://example.com', 'http://nowhere.invalid']
        labels: {team: web}
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:9115
  - job_name: app
    scrape_interval: 10s
    scheme: https
    basic_auth: {username: u, password: p}
    static_configs:
      - targets: ['app:8443']
    kubernetes_sd_configs:
      - role: pod
  - job_name: pushgateway
    honor_labels: true
    static_configs:
      - targets: ['pgw:9091']
remote_read:
  - url: http://x/
"#;

#[test]
fn blackbox_scrape_and_pushgateway_jobs_map() {
    let cfg = parse(BLACKBOX, "p.yml").unwrap();
    let g = cfg.global().unwrap();
    assert_eq!(g.scrape_interval, Duration::from_secs(30));
    assert_eq!(g.scrape_timeout, Duration::from_secs(10));
    let p = plan(&cfg, &BTreeMap::new(), Path::new("/etc/prom")).unwrap();
    assert_eq!(p.rule_files, vec!["/etc/prom/rules/*.yml".to_string()]);
    let bb: Vec<_> = p
        .targets
        .iter()
        .filter(|t| t.id.starts_with("prom:blackbox/"))
        .collect();
    assert_eq!(bb.len(), 2);
    assert_eq!(bb[0].url, "https://example.com");
    assert_eq!(bb[0].module, "http_2xx");
    assert_eq!(bb[0].labels.get("instance").unwrap(), "https://example.com");
    assert_eq!(bb[0].labels.get("job").unwrap(), "blackbox");
    assert_eq!(bb[0].labels.get("team").unwrap(), "web");
    assert_eq!(bb[0].interval, Some(Duration::from_secs(30)));
    let app: Vec<_> = p
        .targets
        .iter()
        .filter(|t| t.id.starts_with("prom:app/"))
        .collect();
    assert_eq!(app.len(), 1);
    assert_eq!(app[0].url, "https://app:8443/metrics");
    assert_eq!(app[0].module, "prometheus_job:app");
    assert_eq!(app[0].interval, Some(Duration::from_secs(10)));
    let m = &p.modules["prometheus_job:app"];
    assert_eq!(m["timeout"], "10s");
    assert_eq!(m["scrape"]["basic_auth"]["username"], "u");
    assert!(
        p.notes.iter().any(|n| n.contains("\"pushgateway\"")),
        "{:?}",
        p.notes
    );
    assert!(!p.targets.iter().any(|t| t.id.contains("pushgateway")));
    let w = p.warnings.join("\n");
    assert!(
        w.contains("job \"app\": `kubernetes_sd_configs` is not supported"),
        "{w}"
    );
    assert!(w.contains("`remote_read` is not supported"), "{w}");
}

#[test]
fn structural_errors_name_the_field() {
    let e = parse(
        "scrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n",
        "p.yml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("scrape_configs[0].scrape_timeout"), "{e}");
    let e = parse(
        "scrape_configs:\n  - job_name: a\n  - job_name: a\n",
        "p.yml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("multiple scrape configs"), "{e}");
    let e = parse(
        "scrape_configs:\n  - job_name: a\n    relabel_configs:\n      - action: hashmod\n        target_label: x\n",
        "p.yml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("non-zero modulus"), "{e}");
    let e = parse("scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: [a]\n        lables: {}\n", "p.yml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("lables"), "{e}");
}

#[test]
fn durations_format_as_prometheus() {
    assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
    assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
    assert_eq!(format_duration(Duration::ZERO), "0s");
}

#[test]
fn default_ports_and_params_in_the_url() {
    let cfg = parse(
        "scrape_configs:\n  - job_name: a\n    params: {x: ['1 2'], y: [b]}\n    static_configs:\n      - targets: [host, 'h:9', '[::1]']\n",
        "p.yml",
    )
    .unwrap();
    let job = cfg.job(0).unwrap();
    let l = populate(&job, target_labels("host", &BTreeMap::new()));
    let set = l.result.clone().unwrap().unwrap();
    assert_eq!(set.get("__address__"), Some("host:80"));
    assert_eq!(set.get("instance"), Some("host:80"));
    assert_eq!(scrape_url(&job, &set), "http://host:80/metrics?x=1+2&y=b");
    let set = populate(&job, target_labels("[::1]", &BTreeMap::new()))
        .result
        .unwrap()
        .unwrap();
    assert_eq!(set.get("__address__"), Some("[::1]:80"));
}

#[test]
fn file_sd_json_and_yaml() {
    let j = parse_file_sd(r#"[{"targets": ["a:1"], "labels": {"env": "prod"}}]"#).unwrap();
    let y = parse_file_sd("- targets: ['a:1']\n  labels:\n    env: prod\n").unwrap();
    assert_eq!(j, y);
    assert!(parse_file_sd("- targets: ['']\n")
        .unwrap_err()
        .contains("targets[0]"));
}

#[test]
fn alertmanagers_from_static_configs() {
    let cfg = parse(
        "alerting:\n  alertmanagers:\n    - static_configs: [{targets: ['127.0.0.1:9093', 'am2:9093']}]\n      path_prefix: /am/\n      timeout: 5s\n",
        "p.yml",
    )
    .unwrap();
    let am = cfg.alertmanagers().unwrap();
    assert_eq!(am[0].url, "http://127.0.0.1:9093/am/api/v2/alerts");
    assert_eq!(am[1].timeout, Duration::from_secs(5));
    assert!(cfg.unsupported().is_empty(), "{:?}", cfg.unsupported());
    let cfg = parse(
        "alerting:\n  alertmanagers:\n    - dns_sd_configs: [{names: [am]}]\n",
        "p.yml",
    )
    .unwrap();
    let e = cfg.alertmanagers().unwrap_err();
    assert!(e.contains("`dns_sd_configs` is not supported"), "{e}");
    assert_eq!(cfg.unsupported().len(), 1);
}

#[test]
fn sample_rules_rename_conflicts_as_2_42() {
    let l = |p: &[(&str, &str)]| Labels::from_pairs(p.iter().map(|(k, v)| (*k, *v)));
    let target = l(&[("job", "j"), ("instance", "i:1"), ("exported_job", "t")]);
    let exposed = l(&[
        ("__name__", "m"),
        ("job", "x"),
        ("instance", "y"),
        ("exported_exported_job", "z"),
        ("empty", ""),
    ]);
    let rules = SampleRules::default();
    // `job` is taken as exported_job (a target label) and exported_exported_job (an
    // exposed one): it goes one further. Shorter names are renamed first.
    assert_eq!(
        rules.mutate(&exposed, &target).unwrap(),
        l(&[
            ("__name__", "m"),
            ("exported_exported_exported_job", "x"),
            ("exported_exported_job", "z"),
            ("exported_instance", "y"),
            ("exported_job", "t"),
            ("instance", "i:1"),
            ("job", "j"),
        ])
    );
    let honor = SampleRules {
        honor_labels: true,
        ..SampleRules::default()
    };
    assert_eq!(
        honor.mutate(&exposed, &target).unwrap(),
        l(&[
            ("__name__", "m"),
            ("exported_exported_job", "z"),
            ("exported_job", "t"),
            ("instance", "y"),
            ("job", "x"),
        ])
    );
    // metric_relabel_configs run after, and may drop.
    let cfg = parse(
        "scrape_configs:\n  - job_name: a\n    metric_relabel_configs:\n      - {source_labels: [exported_instance], regex: y, action: drop}\n",
        "p.yml",
    )
    .unwrap();
    let drop = SampleRules::of(&cfg.job(0).unwrap());
    assert!(drop.mutate(&exposed, &target).is_none());
    assert!(drop.mutate(&l(&[("__name__", "m")]), &target).is_some());
}
