//! Run digests (each run item's rows summarised once, kept in the cache): the windows
//! read through them equal the windows summarised from the rows without a cache, for
//! `/` and for one target, warm and cold, and when runs overlap in time, rows are
//! newer than the request, rows name locations or an item is unreadable (then the
//! rows are read as before).

use argus_model::{Cond, Item, Kv, Millis, Table, Target};
use argus_status::results::{run_item, ResultRow};
use argus_status::rollup::{tally, Rollup, Summary, DAY_MS, HOURS_PK, HOUR_MS};
use argus_status::view::{History, Reading, RollupCache, TargetStats};
use argus_status::{ids, StatusConfig, StatusPage};
use bytes::Bytes;
use std::sync::Arc;

const H: Millis = 1_800_000_000_000 - 1_800_000_000_000 % DAY_MS + 10 * HOUR_MS;

fn row(t: usize, at: Millis, loc: Option<&str>) -> ResultRow {
    let m = (at / 60_000) as usize;
    let ok = !(m + t).is_multiple_of(t % 5 + 2);
    ResultRow {
        target: format!("t{t:02}"),
        at,
        success: ok,
        duration_ms: 10 + (m % 7) as u64,
        error: (!ok).then(|| format!("down at {at}")),
        phases_ms: Some([1, 2, 3, 4, m as u32 % 9]),
        log: (!ok).then(|| vec![format!("level=error at={at}")]),
        location: loc.map(str::to_string),
        ..Default::default()
    }
}

async fn put(kv: &dyn Kv, item: Item) {
    kv.put(Table::Results, item, Cond::Always).await.unwrap();
}

/// 20 targets, the previous hour rolled up, and `runs` in the current hour.
async fn store(runs: Vec<Item>) -> Arc<dyn Kv> {
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    for t in 0..20 {
        let target = Target::new(&format!("t{t:02}"));
        kv.put(Table::Targets, target.to_item(), Cond::Always)
            .await
            .unwrap();
    }
    let prev = H - HOUR_MS;
    let rows: Vec<ResultRow> = (0..60)
        .flat_map(|m| (0..20).map(move |t| row(t, prev + m * 60_000, None)))
        .collect();
    put(
        kv.as_ref(),
        Rollup::of_rows(prev, HOUR_MS, &rows).to_item(HOURS_PK, argus_model::UnixSecs(0)),
    )
    .await;
    for item in runs {
        put(kv.as_ref(), item).await;
    }
    kv
}

/// One run item per minute `from..to` of the current hour, all 20 targets.
fn minute_runs(from: i64, to: i64) -> Vec<Item> {
    (from..to)
        .map(|m| {
            let at = H + m * 60_000;
            run_item(
                at,
                "0",
                (0..20).map(|t| row(t, at, None)).collect(),
                std::time::Duration::from_secs(86_400),
            )
        })
        .collect()
}

fn same(a: &TargetStats, b: &TargetStats, what: &str) {
    assert_eq!(a.w24, b.w24, "{what}: 24h");
    assert_eq!(a.w7d, b.w7d, "{what}: 7d");
    assert_eq!(a.w30d, b.w30d, "{what}: 30d");
    assert_eq!(a.hourly, b.hourly, "{what}: hourly");
    assert_eq!(
        a.locations.keys().collect::<Vec<_>>(),
        b.locations.keys().collect::<Vec<_>>(),
        "{what}: locations"
    );
    for (l, x) in &a.locations {
        let y = &b.locations[l];
        assert_eq!((&x.w24, &x.w30d), (&y.w24, &y.w30d), "{what}: {l}");
    }
}

/// The index's windows: counts, durations and last checks (no outages or logs).
fn same_index(a: &TargetStats, b: &TargetStats, what: &str) {
    assert_eq!(
        (&a.w24, &a.w7d, &a.w30d),
        (&b.w24, &b.w7d, &b.w30d),
        "{what}"
    );
    assert!(a.w30d.iter().all(|s| s.outages.is_empty()), "{what}");
    assert_eq!(lean(&a.hourly), lean(&b.hourly), "{what}: hourly");
}

fn lean(hourly: &[(Millis, Option<&Summary>)]) -> Vec<(Millis, Option<Summary>)> {
    hourly
        .iter()
        .map(|(t, s)| (*t, s.and_then(|s| tally([s]))))
        .collect()
}

/// Every target's windows, through a warm cache (twice: filled, then hit) and for
/// one target at a time, equal those summarised from the rows without a cache.
/// Returns the cache's statistics after the loads.
async fn check(kv: &dyn Kv, now: Millis, quorum: Option<usize>) -> argus_status::view::CacheStats {
    let plain = Reading {
        cache: None,
        quorum,
    };
    let want = History::load_with(kv, now, None, &plain).await.unwrap();
    let cache = RollupCache::new(64 << 20);
    let cached = Reading {
        cache: Some(&cache),
        quorum,
    };
    for round in ["filled", "hit"] {
        let got = History::load_with(kv, now, None, &cached).await.unwrap();
        assert_eq!(got.unreadable, want.unreadable, "{round}");
        assert_eq!(got.items_read, want.items_read, "{round}");
        for t in 0..20 {
            let id = format!("t{t:02}");
            same(&got.stats(&id), &want.stats(&id), &format!("{round} {id}"));
            let what = format!("{round} {id} index");
            same_index(&got.index_stats(&id), &want.index_stats(&id), &what);
        }
    }
    for t in [0, 7, 19] {
        let id = format!("t{t:02}");
        let one = History::load_with(kv, now, Some(&id), &cached)
            .await
            .unwrap();
        same(&one.stats(&id), &want.stats(&id), &format!("one {id} warm"));
        let cold = History::load_with(kv, now, Some(&id), &plain)
            .await
            .unwrap();
        same(
            &cold.stats(&id),
            &want.stats(&id),
            &format!("one {id} cold"),
        );
    }
    cache.stats()
}

#[tokio::test]
async fn the_windows_through_digests_equal_those_from_the_rows() {
    let kv = store(minute_runs(0, 30)).await;
    let now = H + 30 * 60_000;
    let st = check(kv.as_ref(), now, None).await;
    // 30 runs digested once, then found (twice by `/`, three times by target pages).
    assert_eq!((st.run_misses, st.run_hits), (30, 30 * 4), "{st:?}");
    assert_eq!(st.entries, 31, "an hour and 30 runs");
    // And the pages are the same cold and warm.
    let warm = StatusPage::new(kv.clone(), StatusConfig::default(), vec![], None);
    let first = get(&warm, "/", now).await;
    for path in ["/".to_string(), ids::target_path("t03")] {
        let cold = StatusPage::new(kv.clone(), StatusConfig::default(), vec![], None);
        assert_eq!(
            get(&cold, &path, now).await,
            get(&warm, &path, now).await,
            "{path}"
        );
    }
    assert_eq!(get(&warm, "/", now).await, first);
}

#[tokio::test]
async fn runs_spanning_two_hours_and_a_new_run_arriving() {
    // The previous hour is not rolled up: its runs are read too (the grace period).
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    for (i, at) in (0..8).map(|m| H - 4 * 60_000 + m * 60_000).enumerate() {
        let rows = (0..20).map(|t| row(t, at, None)).collect();
        put(
            kv.as_ref(),
            run_item(
                at,
                &format!("{i}"),
                rows,
                std::time::Duration::from_secs(86_400),
            ),
        )
        .await;
    }
    check(kv.as_ref(), H + 4 * 60_000, None).await;
    // A warm cache sees a new run: the hour is chained again, with it.
    let cache = RollupCache::new(64 << 20);
    let reading = Reading {
        cache: Some(&cache),
        quorum: None,
    };
    let now = H + 5 * 60_000;
    History::load_with(kv.as_ref(), now, None, &reading)
        .await
        .unwrap();
    let rows = (0..20).map(|t| row(t, now, None)).collect();
    put(
        kv.as_ref(),
        run_item(now, "9", rows, std::time::Duration::from_secs(86_400)),
    )
    .await;
    let got = History::load_with(kv.as_ref(), now, None, &reading)
        .await
        .unwrap();
    let want = History::load(kv.as_ref(), now).await.unwrap();
    same(&got.stats("t04"), &want.stats("t04"), "after a new run");
    assert_eq!(got.stats("t04").w24.unwrap().n, 9, "8 runs and the new one");
}

#[tokio::test]
async fn overlapping_runs_newer_rows_locations_and_bad_items_read_the_rows() {
    // Two invocations whose rows interleave in time for the same targets: chaining
    // per run would misorder them, so the rows are summarised.
    let mut runs = minute_runs(0, 10);
    let late: Vec<ResultRow> = (0..20).map(|t| row(t, H + 11 * 60_000, None)).collect();
    let early: Vec<ResultRow> = (0..20).map(|t| row(t, H + 10 * 60_000, None)).collect();
    runs.push(run_item(
        H + 10 * 60_000,
        "a",
        late,
        std::time::Duration::from_secs(86_400),
    ));
    runs.push(run_item(
        H + 10 * 60_000,
        "b",
        early,
        std::time::Duration::from_secs(86_400),
    ));
    let kv = store(runs).await;
    check(kv.as_ref(), H + 12 * 60_000, None).await;
    // A request earlier than the newest rows counts only the rows up to it.
    let kv = store(minute_runs(0, 10)).await;
    check(kv.as_ref(), H + 5 * 60_000 + 1, None).await;
    // Rows naming locations: the quorum view is formed from the rows.
    let located: Vec<Item> = (0..6)
        .flat_map(|m| {
            let at = H + m * 60_000;
            ["eu", "us", "ap"].map(|l| {
                let rows = (0..20)
                    .map(|t| row(t + m as usize % 3, at, Some(l)))
                    .collect();
                run_item(at, l, rows, std::time::Duration::from_secs(86_400))
            })
        })
        .collect();
    let kv = store(located).await;
    for q in [None, Some(1), Some(3)] {
        check(kv.as_ref(), H + 6 * 60_000, q).await;
    }
    // An unreadable run item is reported, and the others still count.
    let mut runs = minute_runs(0, 5);
    let mut bad = Item::new("runs", format!("{:013}/x", H + 60_000)).with_attr("v", 2);
    bad.data = Some(b"not zstd".to_vec());
    runs.push(bad);
    let kv = store(runs).await;
    check(kv.as_ref(), H + 5 * 60_000, None).await;
}

async fn get(page: &StatusPage, path: &str, now: Millis) -> String {
    let req = http::Request::get(path).body(Bytes::new()).unwrap();
    let r = page.handle(req, now).await.unwrap();
    assert_eq!(r.status(), 200);
    String::from_utf8(r.body().to_vec()).unwrap()
}
