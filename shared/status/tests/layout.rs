//! The version 2 rollup layout (per-target blocks), reading version 1 items by
//! migration, the decoded-rollup cache, and per-location summaries with the quorum
//! view, over the embedded store.

use argus_model::{Cond, Item, Kv, Millis, Table, Target};
use argus_status::results::{run_item, ResultRow};
use argus_status::rollup::{
    tally, Rollup, Summary, BLOCK_TARGETS, DAYS_PK, DAY_MS, HOURS_PK, HOUR_MS,
};
use argus_status::view::{History, Reading, RollupCache};
use argus_status::{ids, StatusConfig, StatusPage};
use bytes::Bytes;
use std::sync::Arc;

const H: Millis = 1_800_000_000_000 - 1_800_000_000_000 % DAY_MS + 10 * HOUR_MS;

fn row(t: &str, at: Millis, ok: bool, loc: Option<&str>) -> ResultRow {
    ResultRow {
        target: t.into(),
        at,
        success: ok,
        duration_ms: 10 + (at / 60_000 % 7) as u64,
        error: (!ok).then(|| format!("down at {at}")),
        phases_ms: Some([1, 2, 3, 4, 5]),
        log: (!ok).then(|| vec![format!("level=error at={at}")]),
        location: loc.map(str::to_string),
        ..Default::default()
    }
}

/// 100 targets (more than three blocks), each checked every minute of the hour;
/// target i fails minutes divisible by (i % 7 + 2).
fn hour_rows() -> Vec<ResultRow> {
    let mut out = Vec::new();
    for m in 0..60 {
        for i in 0..100 {
            let ok = m % (i % 7 + 2) != 0;
            out.push(row(&format!("t{i:03}"), H + m * 60_000, ok, None));
        }
    }
    out
}

#[test]
fn version_2_round_trips_and_a_target_reads_one_block() {
    let r = Rollup::of_rows(H, HOUR_MS, &hour_rows());
    assert_eq!(r.targets.len(), 100);
    assert!(
        r.locations.is_empty(),
        "single-location rows keep no locations"
    );
    let item = r.to_item(HOURS_PK, argus_model::UnixSecs(0));
    assert_eq!(item.attrs.get("v").and_then(|v| v.as_u64()), Some(2));
    assert_eq!(Rollup::from_item(&item).unwrap(), r);
    // Deterministic: the same rollup gives the same bytes.
    assert_eq!(
        r.to_item(HOURS_PK, argus_model::UnixSecs(0)).data,
        item.data
    );
    for id in ["t000", "t031", "t032", "t099"] {
        let one = Rollup::from_item_for(&item, id).unwrap();
        assert_eq!(one.targets.len(), 1, "{id}");
        assert_eq!(one.targets[id], r.targets[id], "{id}");
    }
    assert!(Rollup::from_item_for(&item, "t100")
        .unwrap()
        .targets
        .is_empty());
    assert!(Rollup::from_item_for(&item, "a")
        .unwrap()
        .targets
        .is_empty());
    const { assert!(BLOCK_TARGETS < 100, "the 100 targets span several blocks") };
}

#[test]
fn version_1_items_still_read_and_match() {
    let r = Rollup::of_rows(H, HOUR_MS, &hour_rows());
    let v1 = r.to_item_v1(HOURS_PK, argus_model::UnixSecs(0));
    assert_eq!(v1.attrs.get("v").and_then(|v| v.as_u64()), Some(1));
    assert_eq!(Rollup::from_item(&v1).unwrap(), r);
    assert_eq!(
        Rollup::from_item_for(&v1, "t050").unwrap().targets["t050"],
        r.targets["t050"]
    );
    // An item from before the `v` attribute was written is version 1 too.
    let mut bare = v1.clone();
    bare.attrs.remove("v");
    assert_eq!(Rollup::from_item(&bare).unwrap(), r);
}

#[test]
fn damaged_version_2_items_are_refused_with_their_key() {
    let r = Rollup::of_rows(H, HOUR_MS, &hour_rows());
    let good = r.to_item(HOURS_PK, argus_model::UnixSecs(0));
    let data = good.data.clone().unwrap();
    let with = |d: Vec<u8>| Item {
        data: Some(d),
        ..good.clone()
    };
    let cases = [
        ("truncated", with(data[..data.len() - 10].to_vec())),
        ("trailing bytes", with([data.clone(), vec![0]].concat())),
        ("short", with(vec![1, 0])),
        ("header past the end", with(vec![255, 255, 0, 0, 1])),
        (
            "no data",
            Item {
                data: None,
                ..good.clone()
            },
        ),
    ];
    for (name, item) in cases {
        let e = Rollup::from_item(&item).unwrap_err().to_string();
        assert!(e.contains(&format!("{HOURS_PK}/{H:013}")), "{name}: {e}");
        assert!(Rollup::from_item_for(&item, "t001").is_err(), "{name}");
    }
    // A rollup stored under another hour's key.
    let mut moved = good.clone();
    moved.sk = format!("{:013}", H + HOUR_MS);
    let e = Rollup::from_item(&moved).unwrap_err().to_string();
    assert!(e.contains("holds the rollup of"), "{e}");
    let newer = good.clone().with_attr("v", 3);
    let e = Rollup::from_item(&newer).unwrap_err().to_string();
    assert!(e.contains("unsupported version 3"), "{e}");
}

#[test]
fn the_cache_reuses_decoded_rollups_only_while_the_item_is_the_same() {
    let r = Rollup::of_rows(H, HOUR_MS, &hour_rows());
    let item = r.to_item(HOURS_PK, argus_model::UnixSecs(0));
    let cache = RollupCache::new(64 << 20);
    let a = cache.decode(&item).unwrap();
    let b = cache.decode(&item).unwrap();
    assert!(Arc::ptr_eq(&a, &b), "decoded once");
    assert_eq!((cache.stats().hits, cache.stats().misses), (1, 1));
    // The same key with other bytes (or as another version) decodes afresh.
    let other = Rollup::of_rows(H, HOUR_MS, &hour_rows()[..500])
        .to_item(HOURS_PK, argus_model::UnixSecs(0));
    let c = cache.decode(&other).unwrap();
    assert_eq!(c.targets.len(), 100);
    assert_ne!(*c, *a);
    let v1 = r.to_item_v1(HOURS_PK, argus_model::UnixSecs(0));
    assert_eq!(*cache.decode(&v1).unwrap(), r);
    assert_eq!(cache.stats().entries, 1, "one entry per item key");
    // A damaged item is an error, not a cache hit.
    let bad = Item {
        data: Some(vec![0; 8]),
        ..item.clone()
    };
    assert!(cache.decode(&bad).is_err());
    // The budget bounds it: the least recently used item goes first.
    let size = item.data.as_ref().unwrap().len() * 10 + 256;
    let small = RollupCache::new(size * 2 + 10);
    let items: Vec<Item> = (0..3)
        .map(|i| {
            let rows: Vec<ResultRow> = hour_rows()
                .into_iter()
                .map(|r| ResultRow {
                    at: r.at + i * HOUR_MS,
                    ..r
                })
                .collect();
            Rollup::of_rows(H + i * HOUR_MS, HOUR_MS, &rows)
                .to_item(HOURS_PK, argus_model::UnixSecs(0))
        })
        .collect();
    for it in &items {
        small.decode(it).unwrap();
    }
    let st = small.stats();
    assert!(st.entries <= 2 && st.bytes <= size * 2 + 10, "{st:?}");
    assert!(small.get(&items[0]).is_none(), "oldest evicted");
    assert!(small.get(&items[2]).is_some());
}

#[tokio::test]
async fn pages_are_the_same_cold_and_warm_and_over_version_1_items() {
    let rows = hour_rows();
    let now = H + 2 * HOUR_MS + 10 * 60_000;
    let mut stores = Vec::new();
    for v1 in [false, true] {
        let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
        for i in 0..100 {
            let t = Target::new(&format!("t{i:03}"));
            kv.put(Table::Targets, t.to_item(), Cond::Always)
                .await
                .unwrap();
        }
        for h in 0..2 {
            let shifted: Vec<ResultRow> = rows
                .iter()
                .map(|r| ResultRow {
                    at: r.at + h * HOUR_MS,
                    ..r.clone()
                })
                .collect();
            let r = Rollup::of_rows(H + h * HOUR_MS, HOUR_MS, &shifted);
            let item = if v1 {
                r.to_item_v1(HOURS_PK, argus_model::UnixSecs(0))
            } else {
                r.to_item(HOURS_PK, argus_model::UnixSecs(0))
            };
            kv.put(Table::Results, item, Cond::Always).await.unwrap();
        }
        let d = H.div_euclid(DAY_MS) * DAY_MS - DAY_MS;
        let day = Rollup::of_rows(d, DAY_MS, &day_rows(&rows, d));
        let item = if v1 {
            day.to_item_v1(DAYS_PK, argus_model::UnixSecs(0))
        } else {
            day.to_item(DAYS_PK, argus_model::UnixSecs(0))
        };
        kv.put(Table::Results, item, Cond::Always).await.unwrap();
        let current: Vec<ResultRow> = (0..100)
            .map(|i| row(&format!("t{i:03}"), H + 2 * HOUR_MS, i % 3 != 0, None))
            .collect();
        kv.put(
            Table::Results,
            run_item(
                H + 2 * HOUR_MS,
                "0",
                current,
                std::time::Duration::from_secs(86400),
            ),
            Cond::Always,
        )
        .await
        .unwrap();
        stores.push(kv);
    }
    let page =
        |kv: &Arc<dyn Kv>| StatusPage::new(kv.clone(), StatusConfig::default(), vec![], None);
    let warm = page(&stores[0]);
    let index = get(&warm, "/".into(), now).await;
    assert_eq!(
        warm.cache().stats().entries,
        4,
        "two hours and a day kept, and the run digested"
    );
    assert!(index.contains("data-window=\"24h\" data-checks="));
    for path in [
        "/".to_string(),
        ids::target_path("t007"),
        ids::target_path("t099"),
    ] {
        let cold = get(&page(&stores[0]), path.clone(), now).await;
        let hot = get(&warm, path.clone(), now).await;
        let old = get(&page(&stores[1]), path.clone(), now).await;
        assert_eq!(cold, hot, "{path}: cold and warm");
        assert_eq!(cold, old, "{path}: version 1 items");
    }
    assert!(warm.cache().stats().hits >= 6);
    // The windows from the cache equal those decoded afresh.
    let cache = RollupCache::new(1 << 26);
    let reading = Reading {
        cache: Some(&cache),
        quorum: None,
    };
    let a = History::load_with(stores[0].as_ref(), now, None, &reading)
        .await
        .unwrap();
    let b = History::load(stores[1].as_ref(), now).await.unwrap();
    for id in ["t000", "t050"] {
        let (x, y) = (a.stats(id), b.stats(id));
        assert_eq!(x.w30d, y.w30d);
        assert_eq!(x.w24, y.w24);
        // The index's windows (closed part kept in the cache) equal the general path.
        let (x, y) = (a.index_stats(id), b.index_stats(id));
        assert_eq!((&x.w24, &x.w7d, &x.w30d), (&y.w24, &y.w7d, &y.w30d), "{id}");
        let lean = |h: &[(Millis, Option<&Summary>)]| -> Vec<Option<Summary>> {
            h.iter().map(|(_, s)| s.and_then(|s| tally([s]))).collect()
        };
        assert_eq!(lean(&x.hourly), lean(&y.hourly), "{id}");
        assert_eq!(x.w30d.as_ref().map(|s| s.n), a.stats(id).w30d.map(|s| s.n));
    }
}

/// A day's worth: the hour's rows repeated at every hour of the day.
fn day_rows(rows: &[ResultRow], day: Millis) -> Vec<ResultRow> {
    let mut out = Vec::new();
    for h in 0..24 {
        out.extend(rows.iter().map(|r| ResultRow {
            at: day + h * HOUR_MS + (r.at - H),
            ..r.clone()
        }));
    }
    out
}

async fn get(page: &StatusPage, path: String, now: Millis) -> String {
    let req = http::Request::get(path).body(Bytes::new()).unwrap();
    let r = page.handle(req, now).await.unwrap();
    assert_eq!(r.status(), 200);
    String::from_utf8(r.body().to_vec()).unwrap()
}

#[test]
fn locations_are_kept_apart_and_the_overall_view_is_the_quorum() {
    // Three locations each minute. "eu" cannot reach the site for minutes 10..20;
    // "eu" and "us" both fail minutes 30..33; "ap" is silent after minute 50 and
    // "us" fails minute 55 (one of the two still checking: not a majority).
    let mut rows = Vec::new();
    for m in 0..60 {
        let at = H + m * 60_000;
        for loc in ["ap", "eu", "us"] {
            if loc == "ap" && m > 50 {
                continue;
            }
            let ok = match loc {
                "eu" => !(10..20).contains(&m) && !(30..33).contains(&m),
                "us" => !(30..33).contains(&m) && m != 55,
                _ => true,
            };
            rows.push(row("site", at + 1_000, ok, Some(loc)));
        }
    }
    let r = Rollup::of_rows(H, HOUR_MS, &rows);
    let per = &r.locations["site"];
    assert_eq!(per.keys().collect::<Vec<_>>(), ["ap", "eu", "us"]);
    assert_eq!((per["ap"].up, per["ap"].n), (51, 51));
    assert_eq!((per["eu"].up, per["eu"].n), (47, 60));
    assert_eq!((per["us"].up, per["us"].n), (56, 60));
    // Majority (2 of 3; 2 of 2 after ap went silent): down only for minutes 30..33
    // and 55 (us alone of us+eu: 1 of 2 is not a majority... 2/2+1 = 2 needed).
    let all = &r.targets["site"];
    assert_eq!(all.n, 60, "one check per round");
    assert_eq!(all.up, 57, "{:?}", all.outages);
    assert_eq!(all.outages.len(), 1);
    assert_eq!(all.outages[0].from, H + 30 * 60_000 + 1_000);
    assert_eq!(all.outages[0].to, Some(H + 33 * 60_000 + 1_000));
    // A quorum of 1: any failing location makes the round down.
    let one = Rollup::of_rows_quorum(H, HOUR_MS, &rows, Some(1));
    assert_eq!(one.targets["site"].up, 60 - 10 - 3 - 1);
    // A quorum of 3 is capped at the locations that checked: with ap silent, 2 of 2.
    let three = Rollup::of_rows_quorum(H, HOUR_MS, &rows, Some(3));
    assert_eq!(three.targets["site"].up, 60);
    // Per-location summaries survive the item and merging into a day.
    let item = r.to_item(HOURS_PK, argus_model::UnixSecs(0));
    assert_eq!(Rollup::from_item(&item).unwrap(), r);
    assert_eq!(
        Rollup::from_item_for(&item, "site").unwrap().locations["site"],
        *per
    );
    let day = Rollup::merge(H - 10 * HOUR_MS, DAY_MS, &[r.clone(), r.clone()]);
    assert_eq!(day.locations["site"]["eu"].n, 120);
}

#[tokio::test]
async fn pages_show_a_row_per_location_only_when_there_are_locations() {
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    for id in ["multi", "single"] {
        kv.put(Table::Targets, Target::new(id).to_item(), Cond::Always)
            .await
            .unwrap();
    }
    let now = H + 5 * 60_000;
    for m in 0..5 {
        let at = H + m * 60_000;
        let rows = vec![
            row("multi", at, true, Some("us")),
            row("multi", at, m < 2, Some("eu")),
            row("single", at, true, None),
        ];
        kv.put(
            Table::Results,
            run_item(at, "0", rows, std::time::Duration::from_secs(86400)),
            Cond::Always,
        )
        .await
        .unwrap();
    }
    let page = StatusPage::new(kv, StatusConfig::default(), vec![], None).with_quorum(Some(2));
    let index = get(&page, "/".into(), now).await;
    assert!(
        index.contains(r#"data-of="multi" data-location="eu" data-state="down""#),
        "{index}"
    );
    assert!(index.contains(r#"data-of="multi" data-location="us" data-state="up""#));
    assert!(
        !index.contains(r#"data-of="single""#),
        "no location rows without locations"
    );
    // Overall: 1 of 2 failing is below the quorum of 2, so the site is up.
    assert!(index.contains(r#"data-target="multi" data-state="up""#));
    let t = get(&page, ids::target_path("multi"), now).await;
    assert!(
        t.contains(r#"tr data-location="eu" data-state="down""#),
        "{t}"
    );
    assert!(t.contains("at least 2 of the locations"));
    assert!(
        t.contains(r#"data-window="24h" data-checks="2/5""#),
        "eu's own uptime"
    );
    let single = get(&page, ids::target_path("single"), now).await;
    assert!(!single.contains("Locations"));
}
