//! Series storage: the [`Queryable`] port and the in-memory [`MemStorage`].

use crate::{is_stale, stale_nan, MatchOp, Matcher};
use argus_model::Labels;
use std::collections::{BTreeMap, HashMap};
use thiserror::Error;

/// A series: its labels (including `__name__`) and samples in ascending time order.
/// Samples may include staleness markers ([`crate::STALE_NAN`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub samples: Vec<(i64, f64)>,
}

/// Anything the engine can select series from.
pub trait Queryable {
    /// Series matching all `matchers` (each label set once, samples in ascending time
    /// order), with their samples in `[start_ms, end_ms]`
    /// (inclusive; staleness markers included). Series without a sample in the range
    /// may be omitted. Prometheus' head returns series in creation order (series ref
    /// order); order matters for ties in `topk`/`bottomk` and for the last bits of
    /// order-dependent float results (`stddev`, `avg`).
    fn select(&self, matchers: &[Matcher], start_ms: i64, end_ms: i64) -> Vec<Series>;

    /// [`Queryable::select`] without copying: the same series, in the same order, as
    /// borrowed labels and sample slices, for a storage that holds them in memory
    /// (`None`, the default, for one that does not). Range queries walk the slices.
    fn select_borrowed(
        &self,
        _matchers: &[Matcher],
        _start_ms: i64,
        _end_ms: i64,
    ) -> Option<Vec<SeriesRef<'_>>> {
        None
    }
}

/// A series borrowed from a storage: its labels and its samples in the selected range.
#[derive(Debug, Clone, Copy)]
pub struct SeriesRef<'a> {
    pub labels: &'a Labels,
    pub samples: &'a [(i64, f64)],
}

/// Why an append was refused (same conditions as Prometheus' TSDB head).
#[derive(Debug, Clone, PartialEq, Error)]
pub enum AppendError {
    #[error("out of order sample for {labels}: {ts} is before the last sample at {last}")]
    OutOfOrder { labels: Labels, ts: i64, last: i64 },
    #[error("duplicate sample for timestamp {ts} of {labels} with a different value")]
    DuplicateTimestamp { labels: Labels, ts: i64 },
}

/// In-memory series storage indexed by metric name.
#[derive(Debug, Default, Clone)]
pub struct MemStorage {
    series: Vec<Series>,
    ids: HashMap<Labels, usize>,
    /// metric name ("" for none) → series ids in creation order.
    by_name: BTreeMap<String, Vec<usize>>,
}

impl MemStorage {
    pub fn new() -> Self {
        Self::default()
    }

    fn id_for(&mut self, labels: Labels) -> usize {
        if let Some(&id) = self.ids.get(&labels) {
            return id;
        }
        let id = self.series.len();
        let name = labels.name().unwrap_or("").to_string();
        self.by_name.entry(name).or_default().push(id);
        self.ids.insert(labels.clone(), id);
        self.series.push(Series {
            labels,
            samples: Vec::new(),
        });
        id
    }

    /// Appends a sample. Samples must come in time order per series: an older one is
    /// refused (`OutOfOrder`), one at the same time is ignored if it has the same value
    /// and refused (`DuplicateTimestamp`) otherwise.
    pub fn append(&mut self, labels: Labels, ts: i64, v: f64) -> Result<(), AppendError> {
        if let Some(&id) = self.ids.get(&labels) {
            if let Some(&(last, lv)) = self.series[id].samples.last() {
                if ts < last {
                    return Err(AppendError::OutOfOrder { labels, ts, last });
                }
                if ts == last {
                    if lv.to_bits() == v.to_bits() {
                        return Ok(());
                    }
                    return Err(AppendError::DuplicateTimestamp { labels, ts });
                }
            }
            self.series[id].samples.push((ts, v));
            return Ok(());
        }
        let id = self.id_for(labels);
        self.series[id].samples.push((ts, v));
        Ok(())
    }

    /// Adds a whole series at once (samples ascending, one per timestamp), as a bulk
    /// load does: the labels are hashed and stored once, not per sample. A series that
    /// exists gets the samples appended with [`MemStorage::append`]'s checks.
    pub fn add_series(
        &mut self,
        labels: Labels,
        samples: Vec<(i64, f64)>,
    ) -> Result<(), AppendError> {
        if self.ids.contains_key(&labels) {
            for (t, v) in samples {
                self.append(labels.clone(), t, v)?;
            }
            return Ok(());
        }
        if let Some(w) = samples.windows(2).find(|w| w[1].0 <= w[0].0) {
            return Err(AppendError::OutOfOrder {
                labels,
                ts: w[1].0,
                last: w[0].0,
            });
        }
        let id = self.id_for(labels);
        self.series[id].samples = samples;
        Ok(())
    }

    /// Marks a series stale at `ts` (appends a staleness marker) if it exists, its last
    /// sample is older than `ts` and not already a marker. Returns whether a marker
    /// was written.
    pub fn mark_stale(&mut self, labels: &Labels, ts: i64) -> bool {
        let Some(&id) = self.ids.get(labels) else {
            return false;
        };
        let s = &mut self.series[id].samples;
        match s.last() {
            Some(&(last, v)) if last < ts && !is_stale(v) => {
                s.push((ts, stale_nan()));
                true
            }
            _ => false,
        }
    }

    /// Drops samples older than `ts`, and series left without samples.
    pub fn truncate_before(&mut self, ts: i64) {
        let old = std::mem::take(&mut self.series);
        self.ids.clear();
        self.by_name.clear();
        for mut s in old {
            let cut = s.samples.partition_point(|&(t, _)| t < ts);
            if cut == s.samples.len() {
                continue;
            }
            s.samples.drain(..cut);
            let id = self.id_for(s.labels);
            self.series[id].samples = s.samples;
        }
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    pub fn sample_count(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }

    /// All series (in insertion order).
    pub fn series(&self) -> &[Series] {
        &self.series
    }

    /// The last sample of a series, if any.
    pub fn last_sample(&self, labels: &Labels) -> Option<(i64, f64)> {
        self.ids
            .get(labels)
            .and_then(|&id| self.series[id].samples.last().copied())
    }
}

pub(crate) fn matches(m: &Matcher, labels: &Labels) -> bool {
    m.is_match(labels.get(&m.name).unwrap_or(""))
}

impl Queryable for MemStorage {
    fn select(&self, matchers: &[Matcher], start_ms: i64, end_ms: i64) -> Vec<Series> {
        self.select_refs(matchers, start_ms, end_ms)
            .into_iter()
            .map(|s| Series {
                labels: s.labels.clone(),
                samples: s.samples.to_vec(),
            })
            .collect()
    }

    fn select_borrowed(
        &self,
        matchers: &[Matcher],
        start_ms: i64,
        end_ms: i64,
    ) -> Option<Vec<SeriesRef<'_>>> {
        Some(self.select_refs(matchers, start_ms, end_ms))
    }
}

impl MemStorage {
    fn select_refs(&self, matchers: &[Matcher], start_ms: i64, end_ms: i64) -> Vec<SeriesRef<'_>> {
        let name_eq = matchers
            .iter()
            .find(|m| m.name == "__name__" && matches!(m.op, MatchOp::Equal));
        let buckets: Vec<&Vec<usize>> = match name_eq {
            Some(m) => self.by_name.get(&m.value).into_iter().collect(),
            None => {
                let name_ms: Vec<&Matcher> =
                    matchers.iter().filter(|m| m.name == "__name__").collect();
                self.by_name
                    .iter()
                    .filter(|(n, _)| name_ms.iter().all(|m| m.is_match(n)))
                    .map(|(_, b)| b)
                    .collect()
            }
        };
        let mut merged: Vec<usize>;
        let ids: &[usize] = if buckets.len() == 1 {
            buckets[0]
        } else {
            merged = buckets.iter().flat_map(|b| b.iter().copied()).collect();
            merged.sort_unstable();
            &merged
        };
        let mut out = Vec::new();
        {
            for &id in ids {
                let s = &self.series[id];
                if !matchers.iter().all(|m| matches(m, &s.labels)) {
                    continue;
                }
                let lo = s.samples.partition_point(|&(t, _)| t < start_ms);
                let hi = s.samples.partition_point(|&(t, _)| t <= end_ms);
                if lo >= hi {
                    continue;
                }
                out.push(SeriesRef {
                    labels: &s.labels,
                    samples: &s.samples[lo..hi],
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(name: &str, job: &str) -> Labels {
        Labels::from_pairs([("__name__", name), ("job", job)])
    }

    #[test]
    fn append_select_truncate() {
        let mut s = MemStorage::new();
        s.append(l("up", "b"), 0, 1.0).unwrap();
        s.append(l("up", "a"), 0, 0.0).unwrap();
        s.append(l("up", "a"), 10, 1.0).unwrap();
        s.append(l("other", "a"), 10, 5.0).unwrap();
        assert!(matches!(
            s.append(l("up", "a"), 5, 1.0),
            Err(AppendError::OutOfOrder { .. })
        ));
        assert!(s.append(l("up", "a"), 10, 1.0).is_ok());
        assert!(matches!(
            s.append(l("up", "a"), 10, 2.0),
            Err(AppendError::DuplicateTimestamp { .. })
        ));
        let m = vec![Matcher::new(MatchOp::Equal, "__name__", "up")];
        let r = s.select(&m, 0, 10);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].labels.get("job"), Some("b"), "creation order");
        assert_eq!(r[1].samples, vec![(0, 0.0), (10, 1.0)]);
        assert_eq!(s.select(&m, 5, 10).len(), 1);
        let all = s.select(&[Matcher::new(MatchOp::Equal, "job", "a")], 0, 100);
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[0].labels.name(),
            Some("up"),
            "creation order across names"
        );
        assert!(s.mark_stale(&l("up", "a"), 20));
        assert!(!s.mark_stale(&l("up", "a"), 30), "already stale");
        s.truncate_before(10);
        assert_eq!(s.series_count(), 2);
        assert_eq!(s.select(&m, 0, 100)[0].samples.len(), 2);
    }
}
