//! A warm function's service, rebuilt when a new configuration version lands in SSM.
//!
//! Every function builds its service once at cold start and keeps it in a [`Warm`].
//! Each invocation asks [`Warm::service`] for the service to run with `now`: at most
//! once a minute that makes one `GetParameter` call (`config_store::SsmConfigWatcher`),
//! and a new valid version builds a new service that replaces the old one for this and
//! later invocations. A version that is invalid, or whose service does not build (an
//! Alertmanager receiver's `${ssm:...}` that does not resolve...), is logged once,
//! counted (`argus_config_invalid_total`, also as a CloudWatch embedded metric) and
//! never fetched again; the last good service keeps running. State is in the tables,
//! so a rebuilt evaluator or notifier carries on where the old one was.
//!
//! Without `ARGUS_CONFIG_SSM` (argus.yml packaged in the zip) there is nothing to
//! watch and [`Warm::service`] is the cold start's service.
//!
//! The per-function builders ([`probe`], [`evaluator`], [`notifier`], [`pushgateway`],
//! [`query`]) are what `functions/*` call; the tests call the same ones.

use crate::config::AppConfig;
use crate::config_store::SsmConfigWatcher;
use crate::evaluator::Evaluator;
use crate::pipeline::{self, ColdStart};
use crate::probe_svc::ProbeService;
use anyhow::Result;
use argus_model::{Kv, Millis};
use argus_notify::Notifier;
use argus_pushgw::Gateway;
use futures::future::BoxFuture;
use std::sync::{Arc, RwLock};

/// Builds a function's service from a configuration (adapted to the environment).
pub type BuildFn<S> = dyn Fn(AppConfig) -> BoxFuture<'static, Result<S>> + Send + Sync;

pub struct Warm<S> {
    current: RwLock<Arc<S>>,
    watcher: Option<SsmConfigWatcher>,
    env: crate::env::FunctionEnv,
    build: Box<BuildFn<S>>,
    /// One rebuild at a time (Lambda runs one invocation per instance, but a test or a
    /// concurrent runtime may not).
    busy: tokio::sync::Mutex<()>,
}

impl<S: Send + Sync + 'static> Warm<S> {
    /// Builds the first service from the cold start's configuration; with
    /// `ARGUS_CONFIG_SSM` set, watches that parameter from `now` on (the cold start
    /// has just read it: the first check is a minute later).
    pub async fn new(cold: &ColdStart, now: Millis, build: Box<BuildFn<S>>) -> Result<Warm<S>> {
        let first = build(cold.config.clone()).await?;
        let watcher = cold.env.config_ssm.as_ref().map(|name| {
            SsmConfigWatcher::new(
                aws_sdk_ssm::Client::new(&cold.sdk),
                name,
                &std::env::temp_dir().join("argus-config"),
                cold.config_version,
            )
            .checked_at(now)
        });
        Ok(Warm {
            current: RwLock::new(Arc::new(first)),
            watcher,
            env: cold.env.clone(),
            build,
            busy: tokio::sync::Mutex::new(()),
        })
    }

    /// The service to run this invocation with (see the module doc).
    pub async fn service(&self, now: Millis) -> Arc<S> {
        if let Some(w) = &self.watcher {
            let _one = self.busy.lock().await;
            match w.poll(now).await {
                Ok(None) => {}
                Ok(Some((version, cfg))) => {
                    let built = match ColdStart::adapt(&self.env, cfg) {
                        Ok(cfg) => (self.build)(cfg).await,
                        Err(e) => Err(e),
                    };
                    match built {
                        Ok(s) => {
                            *self.current.write().expect("warm lock") = Arc::new(s);
                            tracing::info!(version, "configuration version applied");
                        }
                        Err(e) => w.refuse(version, &e, now),
                    }
                }
                // Already logged once and counted by the watcher.
                Err(e) if !e.is_retryable() => {}
                Err(e) => {
                    tracing::warn!(error = %e, "configuration check failed; the next one is in a minute")
                }
            }
        }
        self.current.read().expect("warm lock").clone()
    }

    pub fn watcher(&self) -> Option<&SsmConfigWatcher> {
        self.watcher.as_ref()
    }
}

/// A function's gateway: the Lambda functions share the store.
fn gateway(kv: &Arc<dyn Kv>, cfg: &AppConfig) -> Result<Arc<Gateway>> {
    let gateway = pipeline::build_gateway(kv.clone(), cfg, pipeline::StoreAccess::Shared, None)?;
    Ok(Arc::new(gateway))
}

/// The probe function: its gateway (for the metric bundles) and probe service.
pub async fn probe(cold: &ColdStart, now: Millis) -> Result<Warm<ProbeService>> {
    let kv = cold.kv.clone();
    Warm::new(
        cold,
        now,
        Box::new(move |cfg| {
            let kv = kv.clone();
            Box::pin(async move {
                let gateway = gateway(&kv, &cfg)?;
                pipeline::build_probe(kv, &cfg, gateway)
            })
        }),
    )
    .await
}

/// The evaluator function: the evaluator with an ingest-only notifier (the notifier
/// function sends) and remote_write.
pub async fn evaluator(cold: &ColdStart, now: Millis) -> Result<Warm<Evaluator>> {
    let (kv, sdk) = (cold.kv.clone(), cold.sdk.clone());
    Warm::new(
        cold,
        now,
        Box::new(move |cfg| {
            let (kv, sdk) = (kv.clone(), sdk.clone());
            Box::pin(async move {
                let gateway = gateway(&kv, &cfg)?;
                let notifier =
                    Arc::new(pipeline::build_ingest_notifier(kv.clone(), &cfg, Some(&sdk)).await?);
                let (evaluator, problems) = pipeline::build_running_evaluator(
                    &kv,
                    &cfg,
                    pipeline::StoreAccess::Shared,
                    gateway,
                    notifier,
                    Some(&sdk),
                )
                .await?;
                for p in &problems {
                    tracing::error!("rule file left out: {p}");
                }
                Ok(evaluator)
            })
        }),
    )
    .await
}

/// The notifier function (its API behind `api_token`).
pub async fn notifier(
    cold: &ColdStart,
    api_token: Option<String>,
    now: Millis,
) -> Result<Warm<Notifier>> {
    let (kv, sdk) = (cold.kv.clone(), cold.sdk.clone());
    Warm::new(
        cold,
        now,
        Box::new(move |cfg| {
            let (kv, sdk, token) = (kv.clone(), sdk.clone(), api_token.clone());
            Box::pin(async move {
                pipeline::build_notifier(
                    kv,
                    &cfg,
                    pipeline::StoreAccess::Shared,
                    Some(&sdk),
                    token,
                    None,
                )
                .await
            })
        }),
    )
    .await
}

/// The pushgateway function (pushes behind `push_token`).
pub async fn pushgateway(
    cold: &ColdStart,
    push_token: Option<String>,
    now: Millis,
) -> Result<Warm<Gateway>> {
    let kv = cold.kv.clone();
    Warm::new(
        cold,
        now,
        Box::new(move |cfg| {
            let (kv, token) = (kv.clone(), push_token.clone());
            Box::pin(async move {
                pipeline::build_gateway(kv, &cfg, pipeline::StoreAccess::Shared, token)
            })
        }),
    )
    .await
}

/// The query function, fitted to its memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
pub async fn query(
    cold: &ColdStart,
    token: Option<String>,
    now: Millis,
) -> Result<Warm<argus_query::QueryService>> {
    let kv = cold.kv.clone();
    let memory_mb = cold.env.memory_mb.unwrap_or(512);
    Warm::new(
        cold,
        now,
        Box::new(move |mut cfg| {
            let (kv, token) = (kv.clone(), token.clone());
            Box::pin(async move {
                crate::query::fit_to_function(&mut cfg, memory_mb);
                let (svc, problems) = crate::query::build_query(kv, &cfg, token)?;
                for p in problems {
                    tracing::warn!("rule files: {p}");
                }
                Ok(svc)
            })
        }),
    )
    .await
}
