//! `argus`: the command line. `argus dev` runs the whole pipeline on one machine;
//! the other commands manage targets, rules, silences and deployments.

mod cmds;
mod query_cmd;
mod stores;

use anyhow::{bail, Context, Result};
use argus_model::Target;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// mimalloc rather than glibc's malloc: the gateway's push path allocates per series
/// on several threads, where glibc's arenas contend (docs/bench-pushgateway.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "argus",
    version,
    about = "Serverless website and service monitoring, Prometheus-compatible"
)]
struct Cli {
    #[command(flatten)]
    store: stores::StoreArgs,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the DynamoDB tables and the SNS topic on an AWS-compatible endpoint (idempotent).
    Bootstrap {
        /// AWS-compatible endpoint (LocalStack, moto); default: AWS itself.
        #[arg(long, env = "AWS_ENDPOINT_URL")]
        endpoint_url: Option<String>,
        #[arg(long, default_value = argus_model::schema::DEFAULT_PREFIX)]
        table_prefix: String,
    },
    /// Manage probe targets (the `targets` table).
    Targets {
        #[command(subcommand)]
        cmd: TargetsCmd,
    },
    /// Run the whole pipeline locally with the embedded store.
    Dev {
        #[arg(long, default_value = "argus.yml")]
        config: PathBuf,
        /// Stop after this long (e.g. 2m); default: until Ctrl-C.
        #[arg(long = "for")]
        run_for: Option<String>,
        /// Run this prometheus.yml as it is (over argus.yml's `prometheus_config:`);
        /// argus.yml may then be absent.
        #[arg(long)]
        prometheus_config: Option<PathBuf>,
        /// Alertmanager configuration for the notifier (over argus.yml's).
        #[arg(long)]
        alertmanager_config: Option<PathBuf>,
        /// blackbox.yml whose modules the probe targets use (over argus.yml's).
        #[arg(long)]
        modules: Option<PathBuf>,
    },
    /// Bring a configuration from another tool.
    Import {
        #[command(subcommand)]
        cmd: ImportCmd,
    },
    /// Probe one target now and print its metrics (like blackbox's /probe).
    Probe {
        target: String,
        #[arg(long, default_value = argus_model::target::DEFAULT_MODULE)]
        module: String,
        /// Print the probe log and module, like /probe?debug=true.
        #[arg(long)]
        debug: bool,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Prometheus rule files: check them, or run promtool-format unit tests.
    Rules {
        #[command(subcommand)]
        cmd: RulesCmd,
    },
    /// Evaluate a PromQL expression (instant, or a range with --start/--end/--step)
    /// through the Prometheus API; prints what `promtool query` prints.
    Query {
        expr: String,
        /// Evaluation time: unix seconds or RFC 3339 (default: now).
        #[arg(long)]
        time: Option<String>,
        /// Range start (default: 5m before --end).
        #[arg(long)]
        start: Option<String>,
        /// Range end (default: now).
        #[arg(long)]
        end: Option<String>,
        /// Range step: a duration (15s) or seconds (default: (end-start)/250, at least 1s).
        #[arg(long)]
        step: Option<String>,
        /// A Prometheus-compatible API: a running `argus dev` or a deployed query function URL
        /// (default: the running `argus dev` of --data-dir, else the store directly).
        #[arg(long)]
        url: Option<String>,
        /// Bearer token for --url.
        #[arg(long, env = "ARGUS_QUERY_TOKEN", hide_env_values = true)]
        token: Option<String>,
        /// Sign requests with AWS SigV4 (function URL with AWS_IAM auth).
        #[arg(long)]
        sigv4: bool,
        /// Region for --sigv4 (default: the AWS environment's).
        #[arg(long)]
        region: Option<String>,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Validate an argus.yml (with its rule files and Alertmanager config) or an Alertmanager config.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// Alerts known to the notifier.
    Alerts {
        #[command(subcommand)]
        cmd: AlertsCmd,
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// Estimate the monthly AWS bill (list prices in infra/prices.json, measured per-run figures).
    Cost {
        #[arg(long, default_value_t = 100)]
        targets: u64,
        /// Probe interval of every target.
        #[arg(long, default_value = "1m")]
        interval: String,
        /// Alerting and recording rules.
        #[arg(long, default_value_t = 10)]
        rules: u64,
        /// Notifications per month.
        #[arg(long, default_value_t = 100.0)]
        notifications: f64,
        /// PromQL queries per day to the `query` function (dashboards, promtool).
        #[arg(long, default_value_t = 100.0)]
        queries_per_day: f64,
        /// A price table other than the built-in one (same JSON shape as infra/prices.json).
        #[arg(long)]
        prices: Option<PathBuf>,
        /// Probe locations (regions) including the home one: adds what the others cost.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=30))]
        locations: u32,
    },
    /// The sample store: backfill history.
    Tsdb {
        #[command(subcommand)]
        cmd: TsdbCmd,
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
    /// Silences (Alertmanager semantics).
    Silences {
        #[command(subcommand)]
        cmd: SilencesCmd,
        #[arg(long, global = true)]
        config: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum ImportCmd {
    /// Write a prometheus.yml's targets (static_configs, file_sd_configs, relabeled) into
    /// the targets table, replacing the ones an earlier import wrote, and list its rule
    /// files and what cannot map.
    Prometheus {
        file: PathBuf,
        /// Print the targets instead of writing them.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum RulesCmd {
    /// Like `promtool check rules`.
    Check { files: Vec<PathBuf> },
    /// Like `promtool test rules`.
    Test { files: Vec<PathBuf> },
}

#[derive(Subcommand)]
enum TsdbCmd {
    /// Write OpenMetrics text (what `promtool tsdb create-blocks-from openmetrics`
    /// reads: every sample with a timestamp, `# EOF` last) into 2-hour blocks, merged
    /// with what the store holds. The whole file is validated first.
    Import { file: PathBuf },
}

#[derive(Subcommand)]
enum ConfigCmd {
    Check {
        file: PathBuf,
    },
    /// Validate argus.yml with every file it names and upload it as a new version of
    /// an SSM parameter; the functions apply it within a minute, without a redeploy.
    Push {
        file: PathBuf,
        /// The SSM parameter (the stack's `ARGUS_CONFIG_SSM`).
        #[arg(long, default_value = "/argus/config")]
        parameter: String,
        /// AWS-compatible endpoint (LocalStack, moto); default: AWS itself.
        #[arg(long, env = "AWS_ENDPOINT_URL")]
        endpoint_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum AlertsCmd {
    List,
}

#[derive(Subcommand)]
enum SilencesCmd {
    /// Add a silence: matchers like `alertname=SiteDown` `instance=~".*shop.*"`.
    Add {
        matchers: Vec<String>,
        #[arg(long, default_value = "1h")]
        duration: String,
        #[arg(long, default_value = "argus")]
        author: String,
        #[arg(long, default_value = "")]
        comment: String,
    },
    List,
    Expire {
        ids: Vec<String>,
    },
}

#[derive(Subcommand)]
enum TargetsCmd {
    /// Add (or replace) a target.
    Add(AddTarget),
    /// List targets.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a target by id (the URL unless an id was given).
    Rm { id: String },
    /// Import a Prometheus file_sd / static target list (YAML or JSON).
    Import {
        file: PathBuf,
        #[arg(long, default_value = argus_model::target::DEFAULT_MODULE)]
        module: String,
    },
}

#[derive(Args)]
struct AddTarget {
    url: String,
    #[arg(long)]
    id: Option<String>,
    #[arg(long, default_value = argus_model::target::DEFAULT_MODULE)]
    module: String,
    /// Extra label, `name=value` (repeatable).
    #[arg(long = "label", value_name = "NAME=VALUE")]
    labels: Vec<String>,
    /// Probe interval (Prometheus duration, e.g. 1m).
    #[arg(long)]
    interval: Option<String>,
    /// Add it paused.
    #[arg(long)]
    disabled: bool,
    /// Probe it only from this location (repeatable; names from `locations:` in argus.yml).
    #[arg(long = "location", value_name = "NAME")]
    locations: Vec<String>,
    /// argus.yml whose `locations` the `--location` names are checked against
    /// (default: ./argus.yml).
    #[arg(long)]
    config: Option<PathBuf>,
}

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(run(cli)) {
        // One line naming what failed and why; no backtrace for user errors.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run(cli: Cli) -> Result<()> {
    match cli.cmd {
        Cmd::Bootstrap {
            endpoint_url,
            table_prefix,
        } => {
            let conf = argus_store::aws_sdk_config_for(endpoint_url.as_deref()).await;
            let report =
                argus_store::bootstrap(&conf, &table_prefix, &mut |line: &str| println!("{line}"))
                    .await
                    .context("bootstrap failed")?;
            println!(
                "ready: {} tables created, {} already there; topic {}",
                report.created_tables.len(),
                report.existing_tables.len(),
                report.topic_arn
            );
            Ok(())
        }
        Cmd::Targets { cmd } => targets(cli.store, cmd).await,
        Cmd::Dev {
            config,
            run_for,
            prometheus_config,
            alertmanager_config,
            modules,
        } => {
            let over = cmds::DevOverrides {
                prometheus_config,
                alertmanager_config,
                modules,
            };
            cmds::dev(&config, run_for, over).await
        }
        Cmd::Import {
            cmd: ImportCmd::Prometheus { file, dry_run },
        } => cmds::import_prometheus(&cli.store, &file, dry_run).await,
        Cmd::Probe {
            target,
            module,
            debug,
            config,
        } => {
            if !cmds::probe(config.as_deref(), &target, &module, debug).await? {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Rules { cmd } => {
            let ok = match cmd {
                RulesCmd::Check { files } => cmds::rules_check(&files),
                RulesCmd::Test { files } => cmds::rules_test(&files),
            };
            if !ok {
                std::process::exit(1);
            }
            Ok(())
        }
        Cmd::Query {
            expr,
            time,
            start,
            end,
            step,
            url,
            token,
            sigv4,
            region,
            config,
        } => {
            let args = query_cmd::QueryArgs {
                expr,
                time,
                start,
                end,
                step,
                url,
                token,
                sigv4,
                region,
            };
            query_cmd::query(&cli.store, config.as_deref(), args).await
        }
        Cmd::Config {
            cmd: ConfigCmd::Check { file },
        } => cmds::config_check(&file),
        Cmd::Config {
            cmd:
                ConfigCmd::Push {
                    file,
                    parameter,
                    endpoint_url,
                },
        } => cmds::config_push(&file, &parameter, endpoint_url.as_deref()).await,
        Cmd::Alerts {
            cmd: AlertsCmd::List,
            config,
        } => cmds::alerts_list(&cli.store, config.as_deref()).await,
        Cmd::Cost {
            targets,
            interval,
            rules,
            notifications,
            queries_per_day,
            prices,
            locations,
        } => {
            let iv = argus_model::time::parse_duration(&interval)
                .map_err(|e| anyhow::anyhow!("--interval: {e}"))?;
            let mut inputs = argus_cost::CostInputs::new(targets, iv);
            inputs.rules = rules;
            inputs.notifications_per_month = notifications;
            inputs.queries_per_day = queries_per_day;
            let table = match prices {
                Some(p) => {
                    let text = std::fs::read_to_string(&p)
                        .with_context(|| format!("reading {}", p.display()))?;
                    argus_cost::PriceTable::from_json(&text, &p.display().to_string())?
                }
                None => argus_cost::PriceTable::builtin(),
            };
            let report = argus_cost::estimate(&inputs, &table)?;
            print!("{report}");
            if locations > 1 {
                let extra = argus_cost::estimate_locations(&inputs, &table, locations)?;
                print!("\n{extra}");
                println!(
                    "total with {locations} locations: ${:.2}/month",
                    report.total + extra.extra
                );
            }
            Ok(())
        }
        Cmd::Tsdb {
            cmd: TsdbCmd::Import { file },
            config,
        } => cmds::tsdb_import(&cli.store, config.as_deref(), &file).await,
        Cmd::Silences { cmd, config } => match cmd {
            SilencesCmd::Add {
                matchers,
                duration,
                author,
                comment,
            } => {
                cmds::silences_add(
                    &cli.store,
                    config.as_deref(),
                    &matchers,
                    &duration,
                    &author,
                    &comment,
                )
                .await
            }
            SilencesCmd::List => cmds::silences_list(&cli.store, config.as_deref()).await,
            SilencesCmd::Expire { ids } => {
                cmds::silences_expire(&cli.store, config.as_deref(), &ids).await
            }
        },
    }
}

async fn targets(store: stores::StoreArgs, cmd: TargetsCmd) -> Result<()> {
    let kv = store.open().await?;
    match cmd {
        TargetsCmd::Add(a) => {
            let t = build_target(a)?;
            argus_app::targets::add(kv.as_ref(), &t).await?;
            println!("added {} ({}, module {})", t.id, t.url, t.module);
        }
        TargetsCmd::List { json } => {
            let (good, bad) = argus_app::targets::load_all(kv.as_ref()).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&good)?);
            } else {
                println!(
                    "{:<40} {:<14} {:<8} {:<7} LABELS",
                    "ID", "MODULE", "INTERVAL", "ENABLED"
                );
                for t in &good {
                    let iv = t
                        .interval
                        .map(argus_model::time::format_duration)
                        .unwrap_or_else(|| "-".into());
                    let labels: Vec<String> =
                        t.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    println!(
                        "{:<40} {:<14} {:<8} {:<7} {}",
                        t.id,
                        t.module,
                        iv,
                        t.enabled,
                        labels.join(",")
                    );
                }
            }
            for e in bad {
                eprintln!("warning: {e}");
            }
        }
        TargetsCmd::Rm { id } => {
            if argus_app::targets::remove(kv.as_ref(), &id).await? {
                println!("removed {id}");
            } else {
                bail!("no target with id {id:?}");
            }
        }
        TargetsCmd::Import { file, module } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let list = argus_app::targets::parse_file_sd(&text, &module)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            for (i, t) in list.iter().enumerate() {
                argus_app::targets::add(kv.as_ref(), t).await?;
                eprint!("\rimported {}/{}", i + 1, list.len());
            }
            eprintln!();
            println!("imported {} targets from {}", list.len(), file.display());
        }
    }
    Ok(())
}

fn build_target(a: AddTarget) -> Result<Target> {
    let mut t = Target::new(&a.url);
    if let Some(id) = a.id {
        t.id = id;
    }
    t.module = a.module;
    for l in a.labels {
        let Some((k, v)) = l.split_once('=') else {
            bail!("--label {l:?}: expected NAME=VALUE");
        };
        if !argus_model::valid_label_name(k) || k.starts_with("__") {
            bail!("--label {l:?}: invalid label name {k:?}");
        }
        t.labels.insert(k.to_string(), v.to_string());
    }
    if let Some(iv) = a.interval {
        t.interval = Some(
            argus_model::time::parse_duration(&iv)
                .map_err(|e| anyhow::anyhow!("--interval: {e}"))?,
        );
    }
    t.enabled = !a.disabled;
    if !a.locations.is_empty() {
        t.locations = a.locations;
        let path = a.config.unwrap_or_else(|| PathBuf::from("argus.yml"));
        if !path.exists() {
            bail!(
                "--location: {} not found; name the argus.yml listing the locations with --config",
                path.display()
            );
        }
        let cfg = argus_app::AppConfig::load(&path)?;
        t.check_locations(&cfg.locations)
            .map_err(|e| anyhow::anyhow!("{e} (checked against {})", path.display()))?;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(label: &str) -> AddTarget {
        AddTarget {
            url: "https://example.com".into(),
            id: None,
            module: argus_model::target::DEFAULT_MODULE.into(),
            labels: vec![label.into()],
            interval: None,
            disabled: false,
            locations: Vec::new(),
            config: None,
        }
    }

    /// `--label` names follow Prometheus's rule (one home: `argus_model`); issue 17 fixed
    /// this copy accepting names that start with a digit.
    #[test]
    fn label_names_are_prometheus_names() {
        assert!(build_target(add("team=web")).is_ok());
        for bad in ["1abc=x", "a-b=x", "=x", "__meta=x", "é=x"] {
            let e = build_target(add(bad)).unwrap_err().to_string();
            assert!(e.contains("invalid label name"), "{bad}: {e}");
        }
    }
}
