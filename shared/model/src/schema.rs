//! The tables, in one place. `argus bootstrap`, both store backends and the infra
//! template test all read this, so the code and the template cannot drift apart.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Table {
    /// User-facing configuration: one item per probe target (documented schema).
    Targets,
    /// One row per target per probe run (TTL).
    Results,
    /// One item per Pushgateway metric group (plus the metric-type index).
    Metrics,
    /// Compressed snapshot chunks: the evaluator's TSDB (TTL).
    Samples,
    /// Rule-group state (pending/firing alerts) and the notifier's alert store.
    Alerts,
    /// Notification log: what was sent to whom (conditional writes, TTL).
    Nflog,
    /// Silences (Alertmanager v2 API).
    Silences,
}

pub struct TableSpec {
    pub table: Table,
    /// Base name; deployed as `<prefix><name>`.
    pub name: &'static str,
    pub pk: &'static str,
    pub sk: Option<&'static str>,
    /// TTL attribute, enabled on the table.
    pub ttl: Option<&'static str>,
    /// DynamoDB stream view type, when the table feeds a function.
    pub stream: Option<&'static str>,
}

pub const PAYLOAD_ATTR: &str = "data";
pub const VERSION_ATTR: &str = "ver";
pub const TTL_ATTR: &str = "ttl";

pub const TABLES: &[TableSpec] = &[
    TableSpec {
        table: Table::Targets,
        name: "targets",
        pk: "id",
        sk: None,
        ttl: None,
        stream: None,
    },
    TableSpec {
        table: Table::Results,
        name: "results",
        pk: "pk",
        sk: Some("sk"),
        ttl: Some(TTL_ATTR),
        stream: None,
    },
    TableSpec {
        table: Table::Metrics,
        name: "metrics",
        pk: "pk",
        sk: Some("sk"),
        ttl: Some(TTL_ATTR),
        stream: None,
    },
    TableSpec {
        table: Table::Samples,
        name: "samples",
        pk: "pk",
        sk: Some("sk"),
        ttl: Some(TTL_ATTR),
        stream: None,
    },
    TableSpec {
        table: Table::Alerts,
        name: "alerts",
        pk: "pk",
        sk: Some("sk"),
        ttl: Some(TTL_ATTR),
        stream: Some("NEW_IMAGE"),
    },
    TableSpec {
        table: Table::Nflog,
        name: "nflog",
        pk: "pk",
        sk: Some("sk"),
        ttl: Some(TTL_ATTR),
        stream: None,
    },
    TableSpec {
        table: Table::Silences,
        name: "silences",
        pk: "pk",
        sk: Some("sk"),
        ttl: Some(TTL_ATTR),
        stream: None,
    },
];

impl Table {
    pub const ALL: [Table; 7] = [
        Table::Targets,
        Table::Results,
        Table::Metrics,
        Table::Samples,
        Table::Alerts,
        Table::Nflog,
        Table::Silences,
    ];

    pub fn spec(self) -> &'static TableSpec {
        TABLES
            .iter()
            .find(|s| s.table == self)
            .expect("every table has a spec")
    }

    pub fn name(self) -> &'static str {
        self.spec().name
    }
}

/// Default name prefix of tables and topic (`argus-targets`, ...).
pub const DEFAULT_PREFIX: &str = "argus-";
/// Default SNS topic base name.
pub const TOPIC_NAME: &str = "alerts";
