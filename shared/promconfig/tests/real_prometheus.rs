//! The relabeling table test: for a set of jobs (every relabel action, the
//! `__address__` / `__param_<name>` / `__metrics_path__` / `__scheme__` /
//! `__scrape_interval__` conventions, the blackbox multi-target pattern, static and
//! file_sd groups in JSON and YAML), the labels Argus computes equal the `labels`,
//! `discoveredLabels` and `scrapeUrl` the real Prometheus 2.42 shows in
//! `/api/v1/targets?state=any`, and the targets it drops are the ones Prometheus drops.
//! Every target is on loopback; Prometheus's scrapes of them fail, which is fine.
//!
//! 2.42 shows corrupted `discoveredLabels` for targets whose relabeling adds labels:
//! `relabel()` returns `lb.Labels(lset)`, which writes each step's result into the
//! array of its input, and the first input is the `preRelabelLabels` the API shows
//! (fixed in later releases). Argus reports the true pre-relabeling labels; to compare
//! with 2.42 exactly, [`as_shown_by_2_42`] models that aliasing (Go's slice growth
//! included) from Argus's own per-step results, so the test still fails on any
//! difference in discovery, defaults or relabeling.

use argus_model::Labels;
use argus_promconfig::{groups_of, parse, populate, read_file_sd, scrape_url, target_labels, Job};
use argus_testkit::{spawn_peer, tool};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const CONFIG: &str = r#"
global:
  scrape_interval: 1m
  external_labels: {region: eu}
scrape_configs:
  - job_name: defaults
    static_configs:
      - targets: ['127.0.0.1:9', localhost, '[::1]']
        labels: {team: web, __custom: hidden}
  - job_name: https-params
    scheme: https
    metrics_path: /federate
    scrape_interval: 30s
    scrape_timeout: 5s
    params:
      'match[]': ['{job="x"}', 'up']
      format: [text]
    static_configs:
      - targets: [localhost, '127.0.0.2:8443']
  - job_name: blackbox
    metrics_path: /probe
    params:
      module: [http_2xx]
    file_sd_configs:
      - files: ['sd/*.json', 'sd/*.yml']
    relabel_configs:
      - source_labels: [__address__]
        target_label: __param_target
      - source_labels: [__param_target]
        target_label: instance
      - target_label: __address__
        replacement: 127.0.0.1:9115
      - source_labels: [module]
        regex: (.+)
        target_label: __param_module
      - regex: module
        action: labeldrop
  - job_name: actions
    static_configs:
      - targets: ['127.0.0.3:1', '127.0.0.3:2', '127.0.0.3:3', '127.0.0.3:4']
        labels: {env: Prod, tier: prod, __meta_zone: a-1, __meta_rack: R7}
      - targets: ['127.0.0.4:1']
        labels: {env: dev, tier: other}
    relabel_configs:
      - source_labels: [env]
        regex: dev
        action: drop
      - source_labels: [__address__]
        modulus: 4
        target_label: __tmp_hash
        action: hashmod
      - source_labels: [__tmp_hash]
        regex: '[0-2]'
        action: keep
      - regex: __meta_(.+)
        replacement: meta_$1
        action: labelmap
      - source_labels: [env]
        target_label: env_lower
        action: lowercase
      - source_labels: [meta_zone]
        target_label: zone_upper
        action: uppercase
      - source_labels: [env_lower]
        target_label: tier
        action: keepequal
      - source_labels: [__address__]
        regex: '([^:]+):(\d+)'
        replacement: '${2}-on-$1'
        target_label: port_host
      - source_labels: [__address__]
        regex: '.*:2'
        replacement: 10s
        target_label: __scrape_interval__
      - source_labels: [__address__]
        regex: '.*:1'
        replacement: /other
        target_label: __metrics_path__
      - source_labels: [__address__]
        regex: '.*:1'
        replacement: https
        target_label: __scheme__
      - source_labels: [__address__]
        regex: '.*:1'
        replacement: dbg
        target_label: __param_debug
      - regex: meta_rack
        action: labeldrop
      - source_labels: [tier, env_lower]
        separator: '/'
        target_label: combo
  - job_name: keepers
    static_configs:
      - targets: ['127.0.0.5:1']
        labels: {a: x, b: x, c: y, instance: chosen}
    relabel_configs:
      - source_labels: [a]
        target_label: b
        action: dropequal
  - job_name: keepers2
    static_configs:
      - targets: ['127.0.0.5:2']
        labels: {a: x, b: x, c: y, d: z}
    relabel_configs:
      - regex: '__.*|a|c|job|instance'
        action: labelkeep
  - job_name: file-yaml
    file_sd_configs:
      - files: ['sd/*.yaml']
        refresh_interval: 1m
"#;

const SD_JSON: &str = r#"[
  {"targets": ["http://127.0.0.1:1/ok", "127.0.0.1:2"], "labels": {"site": "a"}},
  {"targets": ["https://127.0.0.1:3/tls"], "labels": {"site": "b", "module": "tcp_connect"}}
]"#;
const SD_YML: &str = "- targets: ['http://localhost:4/x?y=1']\n  labels: {site: c}\n";
const SD_YAML: &str =
    "- targets: ['127.0.0.6:1', '127.0.0.6:2']\n  labels:\n    env: staging\n    __scheme__: https\n";

fn get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

fn map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

/// Go 1.19's `growslice` capacity for 32-byte elements (`labels.Label`).
fn grow(old_cap: usize, needed: usize) -> usize {
    let double = old_cap * 2;
    let mut cap = if needed > double {
        needed
    } else if old_cap < 256 {
        double
    } else {
        let mut c = old_cap;
        while c < needed {
            c += (c + 3 * 256) / 4;
        }
        c
    };
    const CLASSES: &[usize] = &[
        32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256, 288, 320, 352, 384,
        416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792, 2048,
        2304, 2688, 3072, 3200, 3456, 4096,
    ];
    let bytes = cap * 32;
    cap = CLASSES
        .iter()
        .find(|&&c| c >= bytes)
        .map_or(bytes.div_ceil(8192) * 8192, |&c| c)
        / 32;
    cap
}

/// What 2.42's API shows as `discoveredLabels` (see the module doc).
fn as_shown_by_2_42(job: &Job, discovered: &Labels, group_len: usize) -> BTreeMap<String, String> {
    let pre: Vec<(String, String)> = discovered.clone().into_vec();
    let n = pre.len();
    // preRelabelLabels: the group's labels appended one by one to an empty slice, then
    // the job's defaults and params in one append.
    let mut cap = 0;
    for i in 0..group_len.min(n) {
        if i + 1 > cap {
            cap = grow(cap, i + 1);
        }
    }
    if n > cap {
        cap = grow(cap, n);
    }
    let mut arr: Vec<Option<(String, String)>> = pre.iter().cloned().map(Some).collect();
    arr.resize(cap.max(n), None);
    let mut cur = discovered.clone();
    for step in &job.relabel {
        let mut next = cur.clone();
        if !step.apply(&mut next) {
            break;
        }
        if next == cur {
            continue;
        }
        let before: Vec<(String, String)> = cur.clone().into_vec();
        let after: Vec<(String, String)> = next.clone().into_vec();
        let retained: Vec<(String, String)> = before
            .iter()
            .filter(|l| after.contains(l))
            .cloned()
            .collect();
        if after.len() <= cap {
            for (i, l) in after.iter().enumerate() {
                arr[i] = Some(l.clone());
            }
        } else {
            for (i, l) in retained.iter().enumerate() {
                arr[i] = Some(l.clone());
            }
            break; // the result moved to a new array: the shown one is frozen
        }
        cur = next;
    }
    arr.into_iter().take(n).flatten().collect()
}

struct Expected {
    shown: BTreeMap<String, String>,
    labels: Option<(BTreeMap<String, String>, String)>,
}

#[test]
fn labels_equal_the_real_prometheus() {
    let dir = std::env::temp_dir().join(format!("argus-promcfg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sd")).unwrap();
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("prometheus.yml"), CONFIG).unwrap();
    std::fs::write(dir.join("sd/a.json"), SD_JSON).unwrap();
    std::fs::write(dir.join("sd/b.yml"), SD_YML).unwrap();
    std::fs::write(dir.join("sd/c.yaml"), SD_YAML).unwrap();

    // Argus's side.
    let cfg = parse(CONFIG, "prometheus.yml").unwrap();
    let (files, errors) = read_file_sd(&cfg, &dir);
    assert!(errors.is_empty(), "{errors:?}");
    let mut expected = Vec::new();
    let mut aliased = 0;
    for i in 0..cfg.scrape_configs.len() {
        let job = cfg.job(i).unwrap();
        for g in groups_of(&cfg, i, &files, &dir) {
            for t in &g.targets {
                let p = populate(&job, target_labels(t, &g.labels));
                let shown = as_shown_by_2_42(&job, &p.discovered, g.labels.len() + 1);
                if shown != p.discovered.to_map() {
                    aliased += 1;
                }
                let labels = match &p.result {
                    Ok(Some(l)) => Some((p.labels().unwrap().to_map(), scrape_url(&job, l))),
                    Ok(None) => None,
                    Err(e) => panic!("{t}: {e}"),
                };
                expected.push(Expected { shown, labels });
            }
        }
    }
    let n_active = expected.iter().filter(|e| e.labels.is_some()).count();
    let n_dropped = expected.len() - n_active;
    assert!(
        n_active >= 15 && n_dropped >= 3 && aliased >= 3,
        "{n_active} {n_dropped} {aliased}"
    );

    // Prometheus's side.
    let prom = spawn_peer(
        "prometheus",
        &tool("prometheus"),
        &[
            &format!("--config.file={}", dir.join("prometheus.yml").display()),
            "--web.listen-address=127.0.0.1:{port}",
            &format!("--storage.tsdb.path={}", dir.join("data").display()),
        ],
    );
    let end = Instant::now() + Duration::from_secs(30);
    let body = loop {
        let b: Value = serde_json::from_str(&get(prom.port, "/api/v1/targets?state=any"))
            .unwrap_or(Value::Null);
        let n = |k: &str| b["data"][k].as_array().map_or(0, |a| a.len());
        if n("activeTargets") == n_active && n("droppedTargets") == n_dropped {
            break b;
        }
        assert!(Instant::now() < end, "Prometheus shows {b}\n{}", prom.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut unmatched: Vec<&Expected> = expected.iter().collect();
    for t in body["data"]["activeTargets"].as_array().unwrap() {
        let got = (
            map(&t["labels"]),
            t["scrapeUrl"].as_str().unwrap().to_string(),
        );
        let shown = map(&t["discoveredLabels"]);
        let Some(i) = unmatched
            .iter()
            .position(|e| e.labels.as_ref() == Some(&got))
        else {
            panic!("Prometheus has a target Argus does not: {got:?} from {shown:?}");
        };
        assert_eq!(unmatched[i].shown, shown, "discoveredLabels of {got:?}");
        unmatched.remove(i);
    }
    for t in body["data"]["droppedTargets"].as_array().unwrap() {
        let shown = map(&t["discoveredLabels"]);
        let Some(i) = unmatched
            .iter()
            .position(|e| e.labels.is_none() && e.shown == shown)
        else {
            panic!("Prometheus dropped {shown:?}, Argus did not");
        };
        unmatched.remove(i);
    }
    assert!(unmatched.is_empty());
    drop(prom);
    let _ = std::fs::remove_dir_all(&dir);
}
