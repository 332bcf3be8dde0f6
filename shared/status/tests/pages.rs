//! The pages over the embedded store, in process: hostile strings are escaped, unknown
//! ids give 404, query parameters are validated, the bearer token is required unless
//! public mode opens a page, and public mode hides what it must.

use argus_model::{Cond, Item, Kv, Labels, Table, Target};
use argus_status::results::{run_item, ResultRow};
use argus_status::{ids, StatusConfig, StatusPage};
use bytes::Bytes;
use std::sync::Arc;

const NOW: i64 = 1_800_000_000_000;
const EVIL: &str = "<script>alert(1)</script>\"'&<img src=x onerror=alert(2)>";

async fn store() -> Arc<dyn Kv> {
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let mut bad = Target::new(&format!("https://evil.example/{EVIL}"));
    bad.labels.insert("team".into(), EVIL.into());
    bad.labels.insert("public".into(), "yes".into());
    kv.put(Table::Targets, bad.to_item(), Cond::Always)
        .await
        .unwrap();
    let mut hidden = Target::new("https://internal.example/");
    hidden.labels.insert("team".into(), "ops".into());
    kv.put(Table::Targets, hidden.to_item(), Cond::Always)
        .await
        .unwrap();
    let rows = vec![
        ResultRow {
            target: bad.id.clone(),
            at: NOW - 60_000,
            success: false,
            duration_ms: 5,
            error: Some(format!("secret-error {EVIL}")),
            log: Some(vec![format!("level=error msg=\"secret-log {EVIL}\"")]),
            ..Default::default()
        },
        ResultRow {
            target: hidden.id.clone(),
            at: NOW - 60_000,
            success: true,
            duration_ms: 5,
            ..Default::default()
        },
    ];
    kv.put(
        Table::Results,
        run_item(
            NOW - 60_000,
            "0",
            rows,
            std::time::Duration::from_secs(86400),
        ),
        Cond::Always,
    )
    .await
    .unwrap();
    // A firing alert with hostile labels and annotations, as the notifier stores it.
    let labels = Labels::from_pairs([("alertname", "SiteDown"), ("instance", bad.url.as_str())]);
    let alert = argus_notify::alert::StoredAlert {
        labels: labels.clone(),
        annotations: Labels::from_pairs([("summary", EVIL)]),
        starts_at: NOW - 30_000,
        ends_at: NOW + 300_000,
        generator_url: String::new(),
        updated_at: NOW,
        timeout: true,
    };
    let mut item = Item::new(argus_notify::service::ALERTS_PK, labels.fingerprint_hex());
    item.attrs = match serde_json::to_value(&alert).unwrap() {
        serde_json::Value::Object(m) => m,
        _ => unreachable!(),
    };
    kv.put(Table::Alerts, item, Cond::Always).await.unwrap();
    kv
}

fn get(path: &str, token: Option<&str>) -> http::Request<Bytes> {
    let mut b = http::Request::get(path);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    b.body(Bytes::new()).unwrap()
}

async fn text(page: &StatusPage, path: &str, token: Option<&str>) -> (u16, String) {
    let r = page
        .handle(get(path, token), NOW)
        .await
        .expect("a status path");
    (
        r.status().as_u16(),
        String::from_utf8(r.body().to_vec()).unwrap(),
    )
}

#[tokio::test]
async fn hostile_strings_are_escaped_everywhere() {
    let kv = store().await;
    let page = StatusPage::new(kv, StatusConfig::default(), Vec::new(), None);
    let id = format!("https://evil.example/{EVIL}");
    for path in ["/".to_string(), ids::target_path(&id)] {
        let (status, body) = text(&page, &path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(!body.contains("<script>alert"), "{path}");
        assert!(!body.contains("<img src=x"), "{path}");
        assert!(
            body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}"
        );
        // The private view shows the error.
        assert!(body.contains("secret-error"), "{path}");
    }
    let (_, body) = text(&page, &ids::target_path(&id), None).await;
    assert!(
        body.contains("secret-log"),
        "debug output on the target page"
    );
    assert!(body.contains("SiteDown"), "the firing alert");
    // The link on the index is the percent-encoded id.
    let (_, index) = text(&page, "/", None).await;
    assert!(index.contains(&format!("href=\"{}\"", ids::target_path(&id))));
    assert!(index.contains("data-state=\"down\""));
    assert!(index.contains("data-checks=\"0/1\""));
    // Badges escape too (the id is not in them, but the state is).
    let r = page
        .handle(
            get(&format!("/badge/{}/status.svg", ids::encode(&id)), None),
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let svg = String::from_utf8(r.body().to_vec()).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains(">down<"), "{svg}");
}

#[tokio::test]
async fn unknown_ids_bad_params_and_methods() {
    let kv = store().await;
    let page = StatusPage::new(kv, StatusConfig::default(), Vec::new(), None);
    let (s, body) = text(&page, "/target/https%3A%2F%2Fnope.example", None).await;
    assert_eq!(s, 404);
    assert!(body.contains("No target with id"));
    assert_eq!(text(&page, "/target/%zz", None).await.0, 400);
    assert_eq!(text(&page, "/target/%ff", None).await.0, 400);
    assert_eq!(text(&page, "/badge/x/status.svg", None).await.0, 404);
    assert_eq!(text(&page, "/badge/x/uptime/1y.svg", None).await.0, 400);
    assert_eq!(text(&page, "/?refresh=1", None).await.0, 400);
    assert_eq!(text(&page, "/?refresh=abc", None).await.0, 400);
    let (s, body) = text(&page, "/?%3Cb%3E=1", None).await;
    assert_eq!(s, 400);
    assert!(
        body.contains("&lt;b&gt;") && !body.contains("<b>"),
        "{body}"
    );
    let (s, body) = text(&page, "/?refresh=30", None).await;
    assert_eq!(s, 200);
    assert!(body.contains("http-equiv=\"refresh\" content=\"30\""));
    let post = http::Request::post("/").body(Bytes::new()).unwrap();
    assert_eq!(page.handle(post, NOW).await.unwrap().status(), 405);
    // Not ours: left to the router.
    assert!(page.handle(get("/api/v1/query", None), NOW).await.is_none());
    assert!(page.handle(get("/metrics", None), NOW).await.is_none());
}

#[tokio::test]
async fn private_by_default_public_mode_hides_details() {
    let kv = store().await;
    let private = StatusPage::new(
        kv.clone(),
        StatusConfig::default(),
        Vec::new(),
        Some("s3cret".into()),
    );
    for p in ["/", "/alerts", "/badge/x/status.svg", "/target/x"] {
        assert_eq!(text(&private, p, None).await.0, 401, "{p}");
        assert_eq!(text(&private, p, Some("wrong")).await.0, 401, "{p}");
    }
    assert_eq!(text(&private, "/", Some("s3cret")).await.0, 200);

    let cfg = StatusConfig {
        public: true,
        labels: [("public".to_string(), "yes".to_string())].into(),
        ..Default::default()
    };
    let public = StatusPage::new(kv.clone(), cfg.clone(), Vec::new(), Some("s3cret".into()));
    let id = format!("https://evil.example/{EVIL}");
    for path in ["/".to_string(), ids::target_path(&id)] {
        let (s, body) = text(&public, &path, None).await;
        assert_eq!(s, 200, "{path}");
        for hidden in [
            "secret-error",
            "secret-log",
            "SiteDown",
            "internal.example",
            "team",
        ] {
            assert!(!body.contains(hidden), "{path} shows {hidden}");
        }
    }
    assert_eq!(
        text(
            &public,
            &ids::target_path("https://internal.example/"),
            None
        )
        .await
        .0,
        404,
        "a target not selected is not found"
    );
    assert_eq!(text(&public, "/alerts", None).await.0, 401);
    assert_eq!(text(&public, "/alerts", Some("s3cret")).await.0, 200);
    // The token holder sees the private view of a public page.
    let (_, body) = text(&public, &ids::target_path(&id), Some("s3cret")).await;
    assert!(body.contains("secret-error") && body.contains("SiteDown"));
    let open = StatusPage::new(kv, cfg, Vec::new(), None);
    assert_eq!(text(&open, "/alerts", None).await.0, 404);
}
