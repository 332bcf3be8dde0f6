//! Silences (silence/silence.go): matchers, time window, states, validation, and the
//! v2 API shapes (`postableSilence`, `gettableSilence`).

use crate::matcher::{MatchType, Matcher, Matchers};
use argus_model::{Labels, Millis};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiMatcher {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub is_regex: bool,
    #[serde(default = "yes")]
    pub is_equal: bool,
}
fn yes() -> bool {
    true
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl SilenceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SilenceState::Pending => "pending",
            SilenceState::Active => "active",
            SilenceState::Expired => "expired",
        }
    }
}

/// A stored silence; times in unix ms.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<ApiMatcher>,
    pub starts_at: Millis,
    pub ends_at: Millis,
    pub updated_at: Millis,
    pub created_by: String,
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid silence: {0}")]
pub struct SilenceError(pub String);

impl Silence {
    pub fn state(&self, now: Millis) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    pub fn compiled(&self) -> Result<Matchers, SilenceError> {
        self.matchers
            .iter()
            .map(|m| {
                Matcher::new(
                    &m.name,
                    MatchType::from_flags(m.is_equal, m.is_regex),
                    &m.value,
                )
                .map_err(|e| SilenceError(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Matchers)
    }

    /// Whether this silence mutes an alert with these labels at `now`.
    pub fn mutes(&self, labels: &Labels, now: Millis) -> bool {
        self.state(now) == SilenceState::Active && self.compiled().is_ok_and(|m| m.matches(labels))
    }

    /// `validateSilence`.
    pub fn validate(&self) -> Result<(), SilenceError> {
        if self.matchers.is_empty() {
            return Err(SilenceError("at least one matcher required".into()));
        }
        let ms = self.compiled()?;
        for m in &ms.0 {
            if !crate::matcher::valid_label_name(&m.name) {
                return Err(SilenceError(format!("invalid label name {:?}", m.name)));
            }
        }
        if ms.0.iter().all(|m| m.matches_value("")) {
            return Err(SilenceError(
                "at least one matcher must not match the empty string".into(),
            ));
        }
        if self.ends_at <= self.starts_at {
            return Err(SilenceError(
                "end time must not be before start time".into(),
            ));
        }
        if self.created_by.is_empty() {
            return Err(SilenceError("creator information missing".into()));
        }
        if self.comment.is_empty() {
            return Err(SilenceError("comment missing".into()));
        }
        Ok(())
    }

    /// Alertmanager's `canUpdate`: whether `next` may replace `self` in place.
    pub fn can_update(&self, next: &Silence, now: Millis) -> bool {
        if self.matchers != next.matchers {
            return false;
        }
        match self.state(now) {
            SilenceState::Pending => next.starts_at >= now,
            SilenceState::Active => next.starts_at == self.starts_at && next.ends_at >= now,
            SilenceState::Expired => false,
        }
    }
}

/// `postableSilence`.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableSilence {
    #[serde(default)]
    pub id: Option<String>,
    pub matchers: Vec<ApiMatcher>,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(default)]
    pub created_by: String,
    #[serde(default)]
    pub comment: String,
}

/// `gettableSilence`.
pub fn gettable(s: &Silence, now: Millis) -> serde_json::Value {
    use argus_model::time::rfc3339;
    serde_json::json!({
        "id": s.id,
        "status": {"state": s.state(now).as_str()},
        "updatedAt": rfc3339(s.updated_at),
        "matchers": s.matchers,
        "startsAt": rfc3339(s.starts_at),
        "endsAt": rfc3339(s.ends_at),
        "createdBy": s.created_by,
        "comment": s.comment,
    })
}

/// Silences of a list that mute the labels now (their ids).
pub fn silenced_by(silences: &[Silence], labels: &Labels, now: Millis) -> Vec<String> {
    silences
        .iter()
        .filter(|s| s.mutes(labels, now))
        .map(|s| s.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(start: Millis, end: Millis) -> Silence {
        Silence {
            id: "x".into(),
            matchers: vec![ApiMatcher {
                name: "alertname".into(),
                value: "A|B".into(),
                is_regex: true,
                is_equal: true,
            }],
            starts_at: start,
            ends_at: end,
            updated_at: 0,
            created_by: "me".into(),
            comment: "c".into(),
        }
    }

    #[test]
    fn states_and_muting() {
        let x = s(100, 200);
        assert_eq!(x.state(99), SilenceState::Pending);
        assert_eq!(x.state(100), SilenceState::Active);
        assert_eq!(x.state(200), SilenceState::Expired);
        let l = Labels::from_pairs([("alertname", "B")]);
        assert!(x.mutes(&l, 150));
        assert!(!x.mutes(&l, 250));
        assert!(!x.mutes(&Labels::from_pairs([("alertname", "C")]), 150));
    }

    #[test]
    fn validation() {
        assert!(s(1, 2).validate().is_ok());
        assert!(s(2, 1).validate().is_err());
        let mut e = s(1, 2);
        e.matchers[0].value = ".*".into();
        assert!(e.validate().unwrap_err().0.contains("empty string"));
        e.matchers.clear();
        assert!(e.validate().is_err());
        let mut e = s(1, 2);
        e.matchers[0].value = "(".into();
        assert!(e.validate().is_err());
    }

    #[test]
    fn update_rules() {
        let x = s(100, 200);
        let mut longer = x.clone();
        longer.ends_at = 300;
        assert!(x.can_update(&longer, 150));
        let mut moved = x.clone();
        moved.starts_at = 120;
        assert!(!x.can_update(&moved, 150));
        assert!(!x.can_update(&longer, 250));
    }
}
