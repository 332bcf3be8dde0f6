//! Rollups on a stepped clock over the embedded store: every closed hour and day is
//! written once, recomputing gives the same item, and the uptime windows read from
//! the rollups equal the figures computed from the raw rows.

use argus_model::{Cond, Kv, Millis, Table};
use argus_status::results::{run_item, ResultRow, RUNS_PK};
use argus_status::rollup::{self, Rollup, DAYS_PK, DAY_MS, GRACE_MS, HOURS_PK, HOUR_MS};
use argus_status::view::History;
use std::sync::Arc;

const T0: Millis = 1_800_000_000_000 - 1_800_000_000_000 % DAY_MS; // a UTC midnight
const STEP: Millis = 15 * 60_000; // a run every 15 minutes

fn rows_at(at: Millis) -> Vec<ResultRow> {
    // "a" is down for runs 30..=40 and every 97th run; "b" is always up.
    let i = (at - T0) / STEP;
    let a_ok = !((30..=40).contains(&i) || i % 97 == 0);
    vec![
        ResultRow {
            target: "a".into(),
            at,
            success: a_ok,
            duration_ms: 100,
            error: (!a_ok).then(|| format!("run {i} failed")),
            phases_ms: Some([1, 2, 3, 90, 4]),
            ..Default::default()
        },
        ResultRow {
            target: "b".into(),
            at,
            success: true,
            duration_ms: 20,
            ..Default::default()
        },
    ]
}

async fn run_and_roll(kv: &dyn Kv, at: Millis, all: &mut Vec<ResultRow>) -> rollup::RollupReport {
    let rows = rows_at(at);
    all.extend(rows.iter().cloned());
    kv.put(
        Table::Results,
        run_item(at, "0", rows, std::time::Duration::from_secs(40 * 86_400)),
        Cond::Always,
    )
    .await
    .unwrap();
    rollup::advance(kv, at, std::time::Duration::from_secs(40 * 86_400))
        .await
        .unwrap()
}

fn expect(all: &[ResultRow], target: &str, from: Millis, to: Millis) -> (u32, u32) {
    let rows: Vec<&ResultRow> = all
        .iter()
        .filter(|r| r.target == target && r.at >= from && r.at <= to)
        .collect();
    (
        rows.iter().filter(|r| r.success).count() as u32,
        rows.len() as u32,
    )
}

#[tokio::test]
async fn closed_hours_and_days_are_written_once_and_windows_match_the_rows() {
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let mut all = Vec::new();
    let end = T0 + 9 * DAY_MS + 7 * HOUR_MS + 30 * 60_000;
    let (mut hours, mut days) = (0, 0);
    let mut at = T0;
    while at <= end {
        let r = run_and_roll(kv.as_ref(), at, &mut all).await;
        assert!(r.unreadable.is_empty(), "{:?}", r.unreadable);
        assert_eq!(r.already_written, 0, "nothing is written twice");
        hours += r.hours_written;
        days += r.days_written;
        // An hour is written once it is GRACE_MS past its end, not before.
        let last_closed = (at - GRACE_MS).div_euclid(HOUR_MS) * HOUR_MS - HOUR_MS;
        if last_closed >= T0 {
            let sk = format!("{last_closed:013}");
            assert!(kv
                .get(Table::Results, HOURS_PK, &sk)
                .await
                .unwrap()
                .is_some());
            let open = format!("{:013}", last_closed + HOUR_MS);
            assert!(kv
                .get(Table::Results, HOURS_PK, &open)
                .await
                .unwrap()
                .is_none());
        }
        at += STEP;
    }
    let hour_items = kv.query(Table::Results, HOURS_PK, None).await.unwrap();
    let day_items = kv.query(Table::Results, DAYS_PK, None).await.unwrap();
    assert_eq!(hours, hour_items.len());
    assert_eq!(days, day_items.len());
    assert_eq!(day_items.len(), 9, "nine closed days");
    // Nine days and 00:00-07:00 of the tenth (07:00-08:00 is still open).
    assert_eq!(hour_items.len() as i64, 9 * 24 + 7);

    // Recomputing a closed hour from the stored runs yields the same item.
    let h = T0 + 5 * HOUR_MS;
    let runs = kv
        .query(Table::Results, RUNS_PK, Some(&format!("{h:013}")))
        .await
        .unwrap();
    let rows: Vec<ResultRow> = runs
        .iter()
        .flat_map(|i| argus_status::results::rows_of(i).unwrap())
        .collect();
    let again = Rollup::of_rows(h, HOUR_MS, &rows).to_item(HOURS_PK, argus_model::UnixSecs(0));
    let stored = kv
        .get(Table::Results, HOURS_PK, &format!("{h:013}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.data, stored.data, "same bytes");
    // And writing it again is refused, not overwritten.
    assert!(kv
        .put(Table::Results, again, Cond::NotExists)
        .await
        .is_err());
    // A second advance at the same time has nothing to do.
    let r = rollup::advance(
        kv.as_ref(),
        end,
        std::time::Duration::from_secs(40 * 86_400),
    )
    .await
    .unwrap();
    assert_eq!((r.hours_written, r.days_written), (0, 0));

    // The windows, read through the rollups, equal the raw figures.
    let hist = History::load(kv.as_ref(), end).await.unwrap();
    let hour0 = end.div_euclid(HOUR_MS) * HOUR_MS;
    let day0 = end.div_euclid(DAY_MS) * DAY_MS;
    for t in ["a", "b"] {
        let s = hist.stats(t);
        let w = |x: Option<&argus_status::rollup::Summary>| x.map(|s| (s.up, s.n));
        assert_eq!(
            w(s.w24.as_ref()),
            Some(expect(&all, t, hour0 - 23 * HOUR_MS, end)),
            "{t} 24h"
        );
        assert_eq!(
            w(s.w7d.as_ref()),
            Some(expect(&all, t, day0 - 6 * DAY_MS, end)),
            "{t} 7d"
        );
        assert_eq!(
            w(s.w30d.as_ref()),
            Some(expect(&all, t, day0 - 29 * DAY_MS, end)),
            "{t} 30d"
        );
    }
    // Far fewer items than runs: 9 days + today's and yesterday's hours + the last
    // hour's runs, instead of one item per run.
    let run_count = ((end - T0) / STEP + 1) as usize;
    assert!(
        hist.items_read < 60,
        "read {} items for {run_count} runs",
        hist.items_read
    );
    // Outages are stitched across hours: "a" was down from run 30 to run 41.
    let a = hist.stats("a").w30d.unwrap();
    let first = a.outages.iter().find(|o| o.from == T0 + 30 * STEP).unwrap();
    assert_eq!(first.to, Some(T0 + 41 * STEP));
    assert_eq!(first.error.as_deref(), Some("run 30 failed"));
}

#[tokio::test]
async fn an_unreadable_rollup_is_reported_and_kept() {
    let kv: Arc<dyn Kv> = Arc::new(argus_store::EmbeddedKv::open_temp().unwrap());
    let mut all = Vec::new();
    let h = T0 + 3 * HOUR_MS;
    let mut bad = argus_model::Item::new(HOURS_PK, format!("{h:013}")).with_attr("v", 99);
    bad.data = Some(b"future format".to_vec());
    kv.put(Table::Results, bad.clone(), Cond::Always)
        .await
        .unwrap();
    let mut report = rollup::RollupReport::default();
    let mut at = T0;
    while at <= T0 + 5 * HOUR_MS {
        let r = run_and_roll(kv.as_ref(), at, &mut all).await;
        report.unreadable.extend(r.unreadable);
        at += STEP;
    }
    assert!(
        report
            .unreadable
            .iter()
            .any(|e| e.contains("unsupported version 99")),
        "{:?}",
        report.unreadable
    );
    let kept = kv
        .get(Table::Results, HOURS_PK, &format!("{h:013}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.data, bad.data, "never replaced");
    let hist = History::load(kv.as_ref(), at).await.unwrap();
    assert!(hist
        .unreadable
        .iter()
        .any(|e| e.contains("unsupported version 99")));
}
