//! Monthly AWS cost model (`argus cost`): what a deployment of the template in infra/
//! bills per month at AWS list prices, for a number of targets, a probe interval and a
//! number of rules.
//!
//! Two data files feed it, both in the repository and compiled in:
//! - `infra/prices.json`: us-east-1 list prices, each with its source and date;
//! - `infra/measured.json`: per-run figures of the functions (duration, memory, log bytes)
//!   and of their DynamoDB traffic (items and bytes read and written per target per run),
//!   measured from the code (see tests/tests/deploy_cost_figures.rs and docs/cost.md).
//!
//! Pure arithmetic: no I/O, no clock. DynamoDB on-demand units follow the documented
//! rounding: a write costs ceil(item KB) WRUs per item; a GetItem/Query ceil(4 KB units)
//! RRUs (halved for eventually consistent reads); a Scan rounds the total it read.

use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// AWS bills a month as 730 hours.
pub const HOURS_PER_MONTH: f64 = 730.0;
const SECONDS_PER_MONTH: f64 = HOURS_PER_MONTH * 3600.0;
/// Memory at which a Lambda function has one full vCPU (AWS Lambda documentation).
const MB_PER_VCPU: f64 = 1769.0;
/// DynamoDB stores ~100 bytes of overhead per item (indexing), billed as storage.
const ITEM_OVERHEAD_BYTES: f64 = 100.0;
const GB: f64 = 1024.0 * 1024.0 * 1024.0;

static PRICES_JSON: &str = include_str!("../../../infra/prices.json");
static MEASURED_JSON: &str = include_str!("../../../infra/measured.json");

#[derive(Debug, thiserror::Error)]
pub enum CostError {
    #[error("{file}: {message}")]
    Parse { file: String, message: String },
    #[error("{field}: {message}")]
    Input {
        field: &'static str,
        message: String,
    },
}

// ------------------------------------------------------------------ prices

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceTable {
    pub region: String,
    /// Where the figures come from and when they were read.
    pub sources: Vec<PriceSource>,
    pub lambda: LambdaPrices,
    pub dynamodb: DynamoPrices,
    pub sns: SnsPrices,
    pub scheduler: SchedulerPrices,
    pub logs: LogsPrices,
    /// Prices of the alternatives docs/cost.md compares with.
    pub alternatives: AlternativePrices,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSource {
    pub what: String,
    pub url: String,
    pub date: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LambdaPrices {
    pub per_million_requests: f64,
    pub per_gb_second_arm64: f64,
    pub per_gb_second_x86_64: f64,
    pub free_requests: f64,
    pub free_gb_seconds: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamoPrices {
    pub per_million_write_units: f64,
    pub per_million_read_units: f64,
    pub per_gb_month: f64,
    pub free_storage_gb: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnsPrices {
    pub per_million_publishes: f64,
    pub per_100k_email: f64,
    pub free_publishes: f64,
    pub free_email: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerPrices {
    pub per_million_invocations: f64,
    pub free_invocations: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsPrices {
    pub per_gb_ingested: f64,
    pub per_gb_month_stored: f64,
    pub free_gb_ingested: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlternativePrices {
    pub synthetics_per_canary_run: f64,
    pub ec2_smallest_instance: String,
    pub ec2_per_hour: f64,
    pub ebs_gp3_per_gb_month: f64,
    pub ebs_gb: f64,
    pub public_ipv4_per_hour: f64,
}

impl PriceTable {
    pub fn from_json(text: &str, origin: &str) -> Result<PriceTable, CostError> {
        let t: PriceTable = serde_json::from_str(text).map_err(|e| CostError::Parse {
            file: origin.into(),
            message: e.to_string(),
        })?;
        if t.sources.is_empty() {
            return Err(CostError::Parse {
                file: origin.into(),
                message: "`sources` must cite where prices come from".into(),
            });
        }
        Ok(t)
    }

    /// The table shipped in `infra/prices.json`.
    pub fn builtin() -> PriceTable {
        Self::from_json(PRICES_JSON, "infra/prices.json")
            .expect("infra/prices.json is checked by the unit tests")
    }
}

// ------------------------------------------------------------------ measured figures

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measured {
    /// Where each figure comes from (benchmark, test, date).
    pub sources: Vec<String>,
    pub probe: FunctionFigures,
    pub pushgateway: FunctionFigures,
    pub evaluator: FunctionFigures,
    pub notifier: FunctionFigures,
    /// The read-only `query` function (Prometheus's HTTP API), per query.
    pub query: FunctionFigures,
    /// Series one probed target contributes (probe_success, phases...).
    pub series_per_target: f64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionFigures {
    pub memory_mb: f64,
    /// Wall time of an invocation apart from the per-unit work (clients, round trips).
    pub fixed_ms: f64,
    /// CPU time per unit of work at one full vCPU; stretched by the memory's vCPU share.
    #[serde(default)]
    pub cpu_ms_per_target: f64,
    #[serde(default)]
    pub cpu_ms_per_series: f64,
    #[serde(default)]
    pub cpu_ms_per_rule: f64,
    /// Bytes logged per invocation, including Lambda's START/END/REPORT lines.
    pub log_bytes_per_invocation: f64,
    /// DynamoDB traffic of one invocation.
    #[serde(default)]
    pub accesses: Vec<Access>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// PutItem / BatchWriteItem / DeleteItem: ceil(KB) WRU per item.
    Write,
    /// GetItem / Query: ceil(4 KB) RRU per item.
    Read,
    /// Scan, and a Query over many items: ceil(total / 4 KB) RRU.
    Scan,
    /// DeleteItem: ceil(KB of the deleted item) WRU, nothing stored.
    Delete,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    Invocation,
    Target,
    Rule,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Access {
    pub table: String,
    pub op: Op,
    pub per: Per,
    pub items: f64,
    pub bytes_per_item: f64,
    /// Items that grow with the number of targets (one snapshot chunk per tick).
    #[serde(default)]
    pub bytes_per_target: f64,
    #[serde(default)]
    pub consistent: bool,
    /// Written items kept this many days (TTL) and so billed as storage; 0 for items
    /// overwritten in place (their storage is `live_items`).
    #[serde(default)]
    pub retained_days: f64,
}

impl Measured {
    pub fn from_json(text: &str, origin: &str) -> Result<Measured, CostError> {
        serde_json::from_str(text).map_err(|e| CostError::Parse {
            file: origin.into(),
            message: e.to_string(),
        })
    }

    /// The figures shipped in `infra/measured.json`.
    pub fn builtin() -> Measured {
        Self::from_json(MEASURED_JSON, "infra/measured.json")
            .expect("infra/measured.json is checked by the unit tests")
    }
}

// ------------------------------------------------------------------ inputs and report

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Arm64,
    X86_64,
}

#[derive(Clone, Debug)]
pub struct CostInputs {
    pub targets: u64,
    /// How often each target is probed.
    pub interval: Duration,
    /// The schedule rate of probe, evaluator and notifier (ScheduleRate, 1 minute).
    pub tick: Duration,
    /// Alerting and recording rules evaluated each tick.
    pub rules: u64,
    /// Notifications sent per month (each one SNS publish).
    pub notifications_per_month: f64,
    /// E-mail subscriptions on the topic (each notification is one delivery each).
    pub email_subscribers: u64,
    /// Pushes from other jobs to the pushgateway function URL per month.
    pub pushes_per_month: f64,
    /// PromQL queries to the `query` function per day (Grafana panels, `promtool query`).
    pub queries_per_day: f64,
    /// Response time of the slowest target: the probe run waits for it.
    pub target_latency_ms: f64,
    /// Targets one probe invocation handles before fanning out to itself.
    pub max_targets_per_invocation: u64,
    pub arch: Arch,
    pub measured: Measured,
}

impl CostInputs {
    /// `targets` at `interval` with the defaults of infra/ and the shipped figures.
    pub fn new(targets: u64, interval: Duration) -> CostInputs {
        CostInputs {
            targets,
            interval,
            tick: Duration::from_secs(60),
            rules: 10,
            notifications_per_month: 100.0,
            email_subscribers: 1,
            pushes_per_month: 0.0,
            queries_per_day: 100.0,
            target_latency_ms: 300.0,
            max_targets_per_invocation: 500,
            arch: Arch::Arm64,
            measured: Measured::builtin(),
        }
    }

    fn validate(&self) -> Result<(), CostError> {
        if self.tick.is_zero() {
            return Err(CostError::Input {
                field: "tick",
                message: "must be positive".into(),
            });
        }
        if self.interval < self.tick {
            return Err(CostError::Input {
                field: "interval",
                message: format!(
                    "{} is shorter than the schedule tick {}: targets cannot be probed more often than the probe runs",
                    argus_model::time::format_duration(self.interval),
                    argus_model::time::format_duration(self.tick)
                ),
            });
        }
        if self.max_targets_per_invocation == 0 {
            return Err(CostError::Input {
                field: "max_targets_per_invocation",
                message: "must be at least 1".into(),
            });
        }
        for (field, v) in [
            ("notifications_per_month", self.notifications_per_month),
            ("pushes_per_month", self.pushes_per_month),
            ("queries_per_day", self.queries_per_day),
            ("target_latency_ms", self.target_latency_ms),
        ] {
            if !v.is_finite() || v < 0.0 {
                return Err(CostError::Input {
                    field,
                    message: format!("{v} is not a non-negative number"),
                });
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct CostRow {
    pub service: String,
    /// The usage behind the figure, readable ("43,800 requests, 5,475 GB-s").
    pub usage: String,
    pub usd_per_month: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CostReport {
    pub rows: Vec<CostRow>,
    /// Sum of the rows at list prices, no free tier.
    pub total: f64,
    /// What AWS's always-free allowances would take off the total.
    pub free_tier_credit: f64,
    /// The same monitoring with CloudWatch Synthetics (one canary run per probe).
    pub synthetics: f64,
    /// Prometheus + blackbox_exporter + Alertmanager on the smallest EC2 instance.
    pub ec2: f64,
}

impl fmt::Display for CostReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self
            .rows
            .iter()
            .map(|r| r.service.len())
            .max()
            .unwrap_or(0)
            .max(5);
        for r in &self.rows {
            writeln!(
                f,
                "{:<w$}  {:>9}  {}",
                r.service,
                format!("${:.4}", r.usd_per_month),
                r.usage
            )?;
        }
        writeln!(f, "{:<w$}  {:>9}", "", "---------")?;
        writeln!(f, "(AWS always-free allowances would take off ${:.2}; CloudWatch Synthetics: ${:.2}/month; EC2 Prometheus stack: ${:.2}/month)", self.free_tier_credit, self.synthetics, self.ec2)?;
        write!(f, "total  ${:.2}/month", self.total)
    }
}

// ------------------------------------------------------------------ the model

struct FnUsage {
    invocations: f64,
    gb_seconds: f64,
    log_bytes: f64,
    wru: f64,
    rru: f64,
    /// Bytes stored at steady state, per table.
    stored_bytes: Vec<(String, f64)>,
}

fn units(a: &Access, targets: f64, rules: f64) -> f64 {
    let n = match a.per {
        Per::Invocation => 1.0,
        Per::Target => targets,
        Per::Rule => rules,
    };
    a.items * n
}

/// One function's usage per month: `invocations`, each with `targets` targets and `rules`.
fn function_usage(
    f: &FunctionFigures,
    invocations: f64,
    targets: f64,
    rules: f64,
    series: f64,
    wait_ms: f64,
) -> FnUsage {
    let vcpu = (f.memory_mb / MB_PER_VCPU).min(1.0);
    let cpu_ms =
        (f.cpu_ms_per_target * targets + f.cpu_ms_per_series * series + f.cpu_ms_per_rule * rules)
            / vcpu;
    // Probing waits for the slowest target while the CPU works through the others.
    let ms = f.fixed_ms + cpu_ms.max(wait_ms);
    let gb_seconds = invocations * (f.memory_mb / 1024.0) * (ms / 1000.0);
    let (mut wru, mut rru) = (0.0, 0.0);
    let mut stored_bytes = Vec::new();
    for a in &f.accesses {
        let n = units(a, targets, rules);
        let bytes = a.bytes_per_item + a.bytes_per_target * targets;
        match a.op {
            Op::Write => {
                wru += invocations * n * (bytes / 1024.0).ceil().max(1.0);
                let live = if a.retained_days > 0.0 {
                    // Appends kept `retained_days`: that share of a month's writes is stored.
                    invocations * n * (a.retained_days * 86_400.0 / SECONDS_PER_MONTH)
                } else {
                    // Overwritten in place: one live copy.
                    n
                };
                stored_bytes.push((a.table.clone(), live * (bytes + ITEM_OVERHEAD_BYTES)));
            }
            Op::Read => {
                let factor = if a.consistent { 1.0 } else { 0.5 };
                rru += invocations * n * (bytes / 4096.0).ceil().max(1.0) * factor;
            }
            Op::Scan => {
                let factor = if a.consistent { 1.0 } else { 0.5 };
                rru += invocations * ((n * bytes) / 4096.0).ceil().max(1.0) * factor;
            }
            Op::Delete => {
                wru += invocations * n * (bytes / 1024.0).ceil().max(1.0);
            }
        }
    }
    FnUsage {
        invocations,
        gb_seconds,
        log_bytes: invocations * f.log_bytes_per_invocation,
        wru,
        rru,
        stored_bytes,
    }
}

fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v.round());
    let (sign, digits) = s
        .strip_prefix('-')
        .map(|d| ("-", d))
        .unwrap_or(("", s.as_str()));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// The monthly bill of a deployment, one row per service and function.
pub fn estimate(inputs: &CostInputs, prices: &PriceTable) -> Result<CostReport, CostError> {
    inputs.validate()?;
    let m = &inputs.measured;
    let ticks = SECONDS_PER_MONTH / inputs.tick.as_secs_f64();
    // Targets due in one tick (a target at 5m is probed every 5th tick).
    let share = inputs.tick.as_secs_f64() / inputs.interval.as_secs_f64();
    let due = inputs.targets as f64 * share;
    let shards = (due / inputs.max_targets_per_invocation as f64)
        .ceil()
        .max(1.0);
    let per_shard = due / shards;
    let targets = inputs.targets as f64;
    let rules = inputs.rules as f64;
    let series = targets * m.series_per_target;
    let wait = if per_shard > 0.0 {
        inputs.target_latency_ms
    } else {
        0.0
    };

    let probe = function_usage(&m.probe, ticks * shards, per_shard, 0.0, 0.0, wait);
    // The evaluator snapshots every live group each tick, whatever the probe interval.
    let evaluator = function_usage(&m.evaluator, ticks, targets, rules, series, 0.0);
    // The notifier ticks, plus one stream invocation per alert state change (~ per
    // notification), plus API calls (not modelled: Prometheus pushing alerts to it).
    let notifier = function_usage(
        &m.notifier,
        ticks + inputs.notifications_per_month,
        0.0,
        0.0,
        0.0,
        0.0,
    );
    let gateway = function_usage(&m.pushgateway, inputs.pushes_per_month, 1.0, 0.0, 0.0, 0.0);
    // Each query reads the head chunks not yet compacted and the blocks of its span.
    let days_per_month = SECONDS_PER_MONTH / 86_400.0;
    let query = function_usage(
        &m.query,
        inputs.queries_per_day * days_per_month,
        targets,
        0.0,
        series,
        0.0,
    );

    let gbs_price = match inputs.arch {
        Arch::Arm64 => prices.lambda.per_gb_second_arm64,
        Arch::X86_64 => prices.lambda.per_gb_second_x86_64,
    };
    let mut rows = Vec::new();
    let functions = [
        ("probe", &probe),
        ("evaluator", &evaluator),
        ("notifier", &notifier),
        ("pushgateway", &gateway),
        ("query", &query),
    ];
    for (name, u) in &functions {
        if u.invocations == 0.0 {
            continue;
        }
        let cost =
            u.invocations / 1e6 * prices.lambda.per_million_requests + u.gb_seconds * gbs_price;
        rows.push(CostRow {
            service: format!("Lambda {name}"),
            usage: format!(
                "{} requests, {} GB-s",
                thousands(u.invocations),
                thousands(u.gb_seconds)
            ),
            usd_per_month: cost,
        });
    }
    let wru: f64 = functions.iter().map(|(_, u)| u.wru).sum();
    let rru: f64 = functions.iter().map(|(_, u)| u.rru).sum();
    rows.push(CostRow {
        service: "DynamoDB writes".into(),
        usage: format!("{} write request units", thousands(wru)),
        usd_per_month: wru / 1e6 * prices.dynamodb.per_million_write_units,
    });
    rows.push(CostRow {
        service: "DynamoDB reads".into(),
        usage: format!("{} read request units", thousands(rru)),
        usd_per_month: rru / 1e6 * prices.dynamodb.per_million_read_units,
    });
    let stored: f64 = functions
        .iter()
        .flat_map(|(_, u)| u.stored_bytes.iter().map(|(_, b)| b))
        .sum();
    let stored_gb = stored / GB;
    rows.push(CostRow {
        service: "DynamoDB storage".into(),
        usage: format!("{stored_gb:.3} GB"),
        usd_per_month: stored_gb * prices.dynamodb.per_gb_month,
    });
    let publishes = inputs.notifications_per_month;
    let emails = publishes * inputs.email_subscribers as f64;
    rows.push(CostRow {
        service: "SNS".into(),
        usage: format!(
            "{} publishes, {} e-mails",
            thousands(publishes),
            thousands(emails)
        ),
        usd_per_month: publishes / 1e6 * prices.sns.per_million_publishes
            + emails / 1e5 * prices.sns.per_100k_email,
    });
    // Three schedules (probe, evaluator, notifier) at the tick rate.
    let scheduled = 3.0 * ticks;
    rows.push(CostRow {
        service: "EventBridge Scheduler".into(),
        usage: format!("{} invocations", thousands(scheduled)),
        usd_per_month: scheduled / 1e6 * prices.scheduler.per_million_invocations,
    });
    let log_gb: f64 = functions.iter().map(|(_, u)| u.log_bytes).sum::<f64>() / GB;
    rows.push(CostRow {
        service: "CloudWatch Logs".into(),
        usage: format!("{log_gb:.3} GB ingested"),
        // Retention 14 days (template default): about half a month's logs stored.
        usd_per_month: log_gb * prices.logs.per_gb_ingested
            + log_gb * 0.5 * prices.logs.per_gb_month_stored,
    });
    let total: f64 = rows.iter().map(|r| r.usd_per_month).sum();

    // Always-free allowances (not the 12-month trial ones).
    let requests: f64 = functions.iter().map(|(_, u)| u.invocations).sum();
    let gb_s: f64 = functions.iter().map(|(_, u)| u.gb_seconds).sum();
    let free = requests.min(prices.lambda.free_requests) / 1e6 * prices.lambda.per_million_requests
        + gb_s.min(prices.lambda.free_gb_seconds) * gbs_price
        + stored_gb.min(prices.dynamodb.free_storage_gb) * prices.dynamodb.per_gb_month
        + publishes.min(prices.sns.free_publishes) / 1e6 * prices.sns.per_million_publishes
        + emails.min(prices.sns.free_email) / 1e5 * prices.sns.per_100k_email
        + scheduled.min(prices.scheduler.free_invocations) / 1e6
            * prices.scheduler.per_million_invocations
        + log_gb.min(prices.logs.free_gb_ingested) * prices.logs.per_gb_ingested;

    let alt = &prices.alternatives;
    let canary_runs = targets * SECONDS_PER_MONTH / inputs.interval.as_secs_f64();
    let ec2 = HOURS_PER_MONTH * (alt.ec2_per_hour + alt.public_ipv4_per_hour)
        + alt.ebs_gb * alt.ebs_gp3_per_gb_month;
    Ok(CostReport {
        rows,
        total,
        free_tier_credit: free.min(total),
        synthetics: canary_runs * alt.synthetics_per_canary_run,
        ec2,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    /// Round figures whose bill is easy to do by hand.
    fn toy_prices() -> PriceTable {
        PriceTable {
            region: "test".into(),
            sources: vec![PriceSource {
                what: "hand".into(),
                url: "-".into(),
                date: "-".into(),
            }],
            lambda: LambdaPrices {
                per_million_requests: 0.20,
                per_gb_second_arm64: 0.00001,
                per_gb_second_x86_64: 0.00002,
                free_requests: 1e6,
                free_gb_seconds: 400_000.0,
            },
            dynamodb: DynamoPrices {
                per_million_write_units: 1.0,
                per_million_read_units: 0.5,
                per_gb_month: 0.25,
                free_storage_gb: 25.0,
            },
            sns: SnsPrices {
                per_million_publishes: 0.5,
                per_100k_email: 2.0,
                free_publishes: 1e6,
                free_email: 1000.0,
            },
            scheduler: SchedulerPrices {
                per_million_invocations: 1.0,
                free_invocations: 14e6,
            },
            logs: LogsPrices {
                per_gb_ingested: 0.5,
                per_gb_month_stored: 0.03,
                free_gb_ingested: 5.0,
            },
            alternatives: AlternativePrices {
                synthetics_per_canary_run: 0.0012,
                ec2_smallest_instance: "t4g.nano".into(),
                ec2_per_hour: 0.0042,
                ebs_gp3_per_gb_month: 0.08,
                ebs_gb: 8.0,
                public_ipv4_per_hour: 0.005,
            },
        }
    }

    fn figures(memory_mb: f64, fixed_ms: f64, accesses: Vec<Access>) -> FunctionFigures {
        FunctionFigures {
            memory_mb,
            fixed_ms,
            cpu_ms_per_target: 0.0,
            cpu_ms_per_series: 0.0,
            cpu_ms_per_rule: 0.0,
            log_bytes_per_invocation: 0.0,
            accesses,
        }
    }

    fn access(table: &str, op: Op, per: Per, items: f64, bytes: f64) -> Access {
        Access {
            table: table.into(),
            op,
            per,
            items,
            bytes_per_item: bytes,
            bytes_per_target: 0.0,
            consistent: false,
            retained_days: 0.0,
        }
    }

    fn toy_inputs() -> CostInputs {
        let mut i = CostInputs::new(100, Duration::from_secs(60));
        i.rules = 0;
        i.notifications_per_month = 0.0;
        i.email_subscribers = 0;
        i.target_latency_ms = 0.0;
        i.measured = Measured {
            sources: vec![],
            probe: figures(
                1024.0,
                1000.0,
                vec![access("results", Op::Write, Per::Target, 1.0, 1500.0)],
            ),
            pushgateway: figures(128.0, 0.0, vec![]),
            evaluator: figures(
                512.0,
                500.0,
                vec![access("metrics", Op::Scan, Per::Target, 1.0, 1024.0)],
            ),
            notifier: figures(128.0, 0.0, vec![]),
            query: figures(128.0, 0.0, vec![]),
            series_per_target: 10.0,
        };
        i
    }

    fn row<'a>(r: &'a CostReport, service: &str) -> &'a CostRow {
        r.rows
            .iter()
            .find(|x| x.service == service)
            .unwrap_or_else(|| panic!("no row {service}: {r:?}"))
    }

    #[test]
    fn hand_checked_bill() {
        let r = estimate(&toy_inputs(), &toy_prices()).unwrap();
        // A month is 730 h = 43,800 one-minute ticks.
        let ticks = 43_800.0;
        // probe: 43,800 requests × $0.2/M = $0.00876; 1 GB × 1 s × 43,800 = 43,800 GB-s × $0.00001 = $0.438.
        assert!(
            close(row(&r, "Lambda probe").usd_per_month, 0.00876 + 0.438),
            "{r:?}"
        );
        // evaluator: 43,800 × 0.5 GB × 0.5 s = 10,950 GB-s → $0.1095 + $0.00876.
        assert!(
            close(row(&r, "Lambda evaluator").usd_per_month, 0.00876 + 0.1095),
            "{r:?}"
        );
        // notifier: 128 MB, 0 ms: requests only.
        assert!(
            close(row(&r, "Lambda notifier").usd_per_month, 0.00876),
            "{r:?}"
        );
        assert!(
            r.rows.iter().all(|x| x.service != "Lambda pushgateway"),
            "no pushes, no row"
        );
        // writes: 100 targets × 1 item of 1,500 B (= 2 WRU) × 43,800 = 8,760,000 WRU × $1/M.
        assert!(
            close(row(&r, "DynamoDB writes").usd_per_month, 8.76),
            "{r:?}"
        );
        // reads: one scan of 100 × 1 KB = 25 × 4 KB, eventually consistent = 12.5 RRU per tick.
        assert!(
            close(
                row(&r, "DynamoDB reads").usd_per_month,
                12.5 * ticks * 0.5 / 1e6
            ),
            "{r:?}"
        );
        // scheduler: 3 × 43,800 = 131,400 × $1/M.
        assert!(
            close(row(&r, "EventBridge Scheduler").usd_per_month, 0.1314),
            "{r:?}"
        );
        let sum: f64 = r.rows.iter().map(|x| x.usd_per_month).sum();
        assert!(close(r.total, sum));
        // Synthetics: 100 targets × 43,800 runs × $0.0012 = $5,256.
        assert!(close(r.synthetics, 5256.0), "{}", r.synthetics);
        // EC2: 730 h × ($0.0042 + $0.005) + 8 GB × $0.08 = $6.716 + $0.64.
        assert!(close(r.ec2, 7.356), "{}", r.ec2);
        let text = r.to_string();
        assert!(
            text.ends_with(&format!("total  ${:.2}/month", r.total)),
            "{text}"
        );
        assert!(text.contains("Lambda probe"), "{text}");
    }

    #[test]
    fn storage_of_retained_and_overwritten_items() {
        let mut i = toy_inputs();
        let mut kept = access("results", Op::Write, Per::Target, 1.0, 924.0);
        kept.retained_days = 30.0;
        i.measured.probe.accesses =
            vec![kept, access("metrics", Op::Write, Per::Target, 1.0, 924.0)];
        let r = estimate(&i, &toy_prices()).unwrap();
        // results: 100 × 43,800 writes/month, 30 of 30.4166 days kept, 1,024 B each with overhead;
        // metrics: 100 live items of 1,024 B.
        let results = 100.0 * 43_800.0 * (30.0 * 86_400.0 / (730.0 * 3600.0)) * 1024.0;
        let metrics = 100.0 * 1024.0;
        let gb = (results + metrics) / (1024.0 * 1024.0 * 1024.0);
        assert!(
            close(row(&r, "DynamoDB storage").usd_per_month, gb * 0.25),
            "{r:?}"
        );
        // Two 1 KB writes per target per run.
        assert!(
            close(row(&r, "DynamoDB writes").usd_per_month, 2.0 * 4.38),
            "{r:?}"
        );
    }

    #[test]
    fn slower_interval_probes_fewer_targets_per_tick_and_fans_out_above_the_limit() {
        let mut i = toy_inputs();
        i.interval = Duration::from_secs(300);
        let r = estimate(&i, &toy_prices()).unwrap();
        // 100 targets at 5m with a 1m tick: 20 due per tick → a fifth of the writes.
        assert!(
            close(row(&r, "DynamoDB writes").usd_per_month, 8.76 / 5.0),
            "{r:?}"
        );
        // Synthetics bills per run: a fifth too.
        assert!(close(r.synthetics, 5256.0 / 5.0));

        let mut i = toy_inputs();
        i.targets = 1200;
        i.max_targets_per_invocation = 500;
        let r = estimate(&i, &toy_prices()).unwrap();
        // 1,200 due → 3 shards of 400: three probe invocations per tick.
        assert!(
            row(&r, "Lambda probe")
                .usage
                .starts_with("131,400 requests"),
            "{r:?}"
        );
    }

    #[test]
    fn probe_waits_for_the_slowest_target_or_its_cpu() {
        let mut i = toy_inputs();
        i.measured.probe = figures(1769.0, 0.0, vec![]);
        i.target_latency_ms = 250.0;
        let r = estimate(&i, &toy_prices()).unwrap();
        // 1,769 MB = 1 vCPU, 0.25 s each tick: 43,800 × 1.7275 GB × 0.25 s.
        let gbs = 43_800.0 * (1769.0 / 1024.0) * 0.25;
        assert!(
            close(
                row(&r, "Lambda probe").usd_per_month,
                0.00876 + gbs * 0.00001
            ),
            "{r:?}"
        );
        // CPU-bound: 100 targets × 5 ms at 1 vCPU = 500 ms > 250 ms latency.
        i.measured.probe.cpu_ms_per_target = 5.0;
        let r = estimate(&i, &toy_prices()).unwrap();
        let gbs = 43_800.0 * (1769.0 / 1024.0) * 0.5;
        assert!(
            close(
                row(&r, "Lambda probe").usd_per_month,
                0.00876 + gbs * 0.00001
            ),
            "{r:?}"
        );
    }

    #[test]
    fn sns_and_free_tier() {
        let mut i = toy_inputs();
        i.notifications_per_month = 2000.0;
        i.email_subscribers = 2;
        let r = estimate(&i, &toy_prices()).unwrap();
        // 2,000 publishes × $0.5/M + 4,000 e-mails × $2/100k.
        assert!(close(row(&r, "SNS").usd_per_month, 0.001 + 0.08), "{r:?}");
        // Lambda's 400k GB-s and 1M requests cover every function here; SNS's 1,000 e-mails.
        assert!(
            r.free_tier_credit > 0.5 && r.free_tier_credit <= r.total,
            "{r:?}"
        );
    }

    #[test]
    fn bad_inputs_are_rejected_with_the_field() {
        let mut i = toy_inputs();
        i.interval = Duration::from_secs(30);
        let e = estimate(&i, &toy_prices()).unwrap_err().to_string();
        assert!(
            e.starts_with("interval: 30s is shorter than the schedule tick 1m"),
            "{e}"
        );
        let mut i = toy_inputs();
        i.target_latency_ms = f64::NAN;
        assert!(estimate(&i, &toy_prices())
            .unwrap_err()
            .to_string()
            .starts_with("target_latency_ms"));
        assert!(PriceTable::from_json("{}", "p.json")
            .unwrap_err()
            .to_string()
            .starts_with("p.json: missing field"));
    }

    #[test]
    fn shipped_tables_parse_and_cite_sources() {
        let p = PriceTable::builtin();
        assert_eq!(p.region, "us-east-1");
        assert!(
            p.sources
                .iter()
                .all(|s| s.url.starts_with("https://") && !s.date.is_empty()),
            "{:?}",
            p.sources
        );
        let m = Measured::builtin();
        assert!(!m.sources.is_empty());
    }

    #[test]
    fn goal_100_targets_at_1m() {
        // The goal, on the shipped prices and measured figures. The figure itself is
        // recorded in docs/cost.md; this pins the model's arithmetic end to end.
        let r = estimate(
            &CostInputs::new(100, Duration::from_secs(60)),
            &PriceTable::builtin(),
        )
        .unwrap();
        let text = r.to_string();
        assert!(
            text.lines().last().unwrap().starts_with("total  $"),
            "{text}"
        );
        assert!(r.total > 0.0 && r.total < r.synthetics / 100.0, "{text}");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(43_800.0), "43,800");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}

/// Inter-region data transfer, USD per GB (AWS lists $0.02/GB between most regions:
/// <https://aws.amazon.com/ec2/pricing/on-demand/#Data_Transfer_within_the_same_AWS_Region>,
/// "Data Transfer OUT From Amazon EC2 To ... other AWS Regions"; DynamoDB bills the same).
pub const INTER_REGION_PER_GB: f64 = 0.02;

/// One DynamoDB round trip from a remote region to the home one (ms, us-east-1 ↔
/// eu-west-1 is ~70 ms, ↔ ap-southeast-2 ~200 ms): a remote probe waits for it on each
/// table call, and Lambda bills the wait.
pub const REMOTE_ROUND_TRIP_MS: f64 = 150.0;

/// `argus cost --locations N`: what the N−1 locations beyond the home region add.
#[derive(Clone, Debug, PartialEq)]
pub struct LocationsCost {
    pub locations: u32,
    /// The chosen design's extra rows: remote probes writing cross-region to the home
    /// tables (docs/cost.md).
    pub rows: Vec<CostRow>,
    pub extra: f64,
    /// The alternative, for comparison: the targets, results and metrics tables as
    /// DynamoDB global tables replicated to every location (remote probes then use
    /// their local replica; every write is replicated to the N−1 other regions).
    pub global_tables_extra: f64,
}

impl fmt::Display for LocationsCost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} probe locations: {} more regions, probes writing cross-region to the home tables",
            self.locations,
            self.locations.saturating_sub(1)
        )?;
        let w = self.rows.iter().map(|r| r.service.len()).max().unwrap_or(0);
        for r in &self.rows {
            writeln!(
                f,
                "  {:<w$}  {:>9}  {}",
                r.service,
                format!("${:.4}", r.usd_per_month),
                r.usage
            )?;
        }
        writeln!(
            f,
            "  {:<w$}  {:>9}",
            "locations extra",
            format!("${:.4}", self.extra)
        )?;
        writeln!(
            f,
            "  (DynamoDB global tables instead: ${:.4} extra)",
            self.global_tables_extra
        )
    }
}

/// The extra monthly cost of probing from `locations` regions (the home one counted).
/// Each remote location runs the probe schedule over the same targets; the evaluator
/// snapshots N× the probe series. Free-tier credit is not applied to the extra.
pub fn estimate_locations(
    inputs: &CostInputs,
    prices: &PriceTable,
    locations: u32,
) -> Result<LocationsCost, CostError> {
    inputs.validate()?;
    let extra_n = locations.saturating_sub(1) as f64;
    let n = extra_n + 1.0;
    let m = &inputs.measured;
    let ticks = SECONDS_PER_MONTH / inputs.tick.as_secs_f64();
    let due = inputs.targets as f64 * inputs.tick.as_secs_f64() / inputs.interval.as_secs_f64();
    let shards = (due / inputs.max_targets_per_invocation as f64)
        .ceil()
        .max(1.0);
    let per_shard = due / shards;
    let wait = if per_shard > 0.0 {
        inputs.target_latency_ms
    } else {
        0.0
    };
    let (targets, rules) = (inputs.targets as f64, inputs.rules as f64);
    let series = targets * m.series_per_target;
    let mut remote = m.probe.clone();
    remote.fixed_ms += REMOTE_ROUND_TRIP_MS * remote.accesses.len() as f64;
    let probe = function_usage(&remote, ticks * shards, per_shard, 0.0, 0.0, wait);
    let local_probe = function_usage(&m.probe, ticks * shards, per_shard, 0.0, 0.0, wait);
    let ev1 = function_usage(&m.evaluator, ticks, targets, rules, series, 0.0);
    let evn = function_usage(&m.evaluator, ticks, targets * n, rules, series * n, 0.0);
    let gbs_price = match inputs.arch {
        Arch::Arm64 => prices.lambda.per_gb_second_arm64,
        Arch::X86_64 => prices.lambda.per_gb_second_x86_64,
    };
    let lambda = |u: &FnUsage| {
        u.invocations / 1e6 * prices.lambda.per_million_requests + u.gb_seconds * gbs_price
    };
    let stored = |u: &FnUsage| u.stored_bytes.iter().map(|(_, b)| b).sum::<f64>();
    // Bytes a remote probe moves between regions per month: what it writes and reads.
    let moved: f64 = m
        .probe
        .accesses
        .iter()
        .map(|a| {
            probe.invocations
                * units(a, per_shard, 0.0)
                * (a.bytes_per_item + a.bytes_per_target * per_shard)
        })
        .sum();
    let transfer_gb = extra_n * moved / GB;
    let mut rows = vec![
        CostRow {
            service: "Lambda probe (remote)".into(),
            usage: format!(
                "{} requests, {} GB-s (+{} ms of cross-region calls each)",
                thousands(extra_n * probe.invocations),
                thousands(extra_n * probe.gb_seconds),
                REMOTE_ROUND_TRIP_MS * remote.accesses.len() as f64
            ),
            usd_per_month: extra_n * lambda(&probe),
        },
        CostRow {
            service: "Lambda evaluator (more series)".into(),
            usage: format!("{} GB-s more", thousands(evn.gb_seconds - ev1.gb_seconds)),
            usd_per_month: lambda(&evn) - lambda(&ev1),
        },
        CostRow {
            service: "DynamoDB writes (remote)".into(),
            usage: format!(
                "{} write request units",
                thousands(extra_n * probe.wru + evn.wru - ev1.wru)
            ),
            usd_per_month: (extra_n * probe.wru + evn.wru - ev1.wru) / 1e6
                * prices.dynamodb.per_million_write_units,
        },
        CostRow {
            service: "DynamoDB reads (remote)".into(),
            usage: format!(
                "{} read request units",
                thousands(extra_n * probe.rru + evn.rru - ev1.rru)
            ),
            usd_per_month: (extra_n * probe.rru + evn.rru - ev1.rru) / 1e6
                * prices.dynamodb.per_million_read_units,
        },
        CostRow {
            service: "DynamoDB storage (remote)".into(),
            usage: format!(
                "{:.3} GB",
                (extra_n * stored(&probe) + stored(&evn) - stored(&ev1)) / GB
            ),
            usd_per_month: (extra_n * stored(&probe) + stored(&evn) - stored(&ev1)) / GB
                * prices.dynamodb.per_gb_month,
        },
        CostRow {
            service: "EventBridge Scheduler (remote)".into(),
            usage: format!("{} invocations", thousands(extra_n * ticks)),
            usd_per_month: extra_n * ticks / 1e6 * prices.scheduler.per_million_invocations,
        },
        CostRow {
            service: "CloudWatch Logs (remote)".into(),
            usage: format!("{:.3} GB ingested", extra_n * probe.log_bytes / GB),
            usd_per_month: extra_n * probe.log_bytes / GB
                * (prices.logs.per_gb_ingested + 0.5 * prices.logs.per_gb_month_stored),
        },
        CostRow {
            service: "Inter-region transfer".into(),
            usage: format!("{transfer_gb:.3} GB at ${INTER_REGION_PER_GB}/GB"),
            usd_per_month: transfer_gb * INTER_REGION_PER_GB,
        },
    ];
    rows.retain(|r| r.usd_per_month > 0.0 || r.service.starts_with("Lambda probe"));
    let extra: f64 = rows.iter().map(|r| r.usd_per_month).sum();

    // Global tables: the remote probes' work without the round trips, and every write
    // of every location's probe (and the evaluator's) to the replicated tables lands in
    // all N regions: N−1 replicated writes each, their bytes moved, N copies stored.
    let replicated = ["targets", "results", "metrics"];
    let local_writes_bytes: f64 = m
        .probe
        .accesses
        .iter()
        .filter(|a| a.op == Op::Write && replicated.contains(&a.table.as_str()))
        .map(|a| {
            local_probe.invocations
                * units(a, per_shard, 0.0)
                * (a.bytes_per_item + a.bytes_per_target * per_shard)
        })
        .sum();
    let replicated_stored: f64 = local_probe
        .stored_bytes
        .iter()
        .filter(|(t, _)| replicated.contains(&t.as_str()))
        .map(|(_, b)| b)
        .sum();
    let global_tables_extra = extra_n * lambda(&local_probe)
        + (lambda(&evn) - lambda(&ev1))
        + (n * extra_n * local_probe.wru + extra_n * local_probe.wru + evn.wru - ev1.wru) / 1e6
            * prices.dynamodb.per_million_write_units
        + (extra_n * local_probe.rru + evn.rru - ev1.rru) / 1e6
            * prices.dynamodb.per_million_read_units
        + (n * extra_n * replicated_stored) / GB * prices.dynamodb.per_gb_month
        + extra_n * ticks / 1e6 * prices.scheduler.per_million_invocations
        + extra_n * local_probe.log_bytes / GB
            * (prices.logs.per_gb_ingested + 0.5 * prices.logs.per_gb_month_stored)
        + n * extra_n * local_writes_bytes / GB * INTER_REGION_PER_GB;
    Ok(LocationsCost {
        locations,
        rows,
        extra,
        global_tables_extra,
    })
}

#[cfg(test)]
mod locations_tests {
    use super::*;

    #[test]
    fn one_location_adds_nothing_and_more_add_per_region() {
        let inputs = CostInputs::new(100, Duration::from_secs(60));
        let prices = PriceTable::builtin();
        let one = estimate_locations(&inputs, &prices, 1).unwrap();
        assert!(one.extra.abs() < 1e-12, "{one}");
        let three = estimate_locations(&inputs, &prices, 3).unwrap();
        let five = estimate_locations(&inputs, &prices, 5).unwrap();
        assert!(
            three.extra > 0.0 && five.extra > three.extra,
            "{three}\n{five}"
        );
        // Cross-region writes beat replicating every write to every region.
        assert!(three.global_tables_extra > three.extra, "{three}");
        // Two more regions cost less than two more single-region deployments.
        let base = estimate(&inputs, &prices).unwrap().total;
        assert!(three.extra < 2.0 * base, "{three} vs {base}");
        assert!(
            three.to_string().contains("Inter-region transfer"),
            "{three}"
        );
    }
}
