//! Creates Argus' tables and SNS topic on any AWS-compatible endpoint. Idempotent: what
//! exists is left alone (and reported), what is missing is created. Used by
//! `argus bootstrap`, the LocalStack init hook and the tests against moto.

use crate::dynamo::classify;
use argus_model::schema::{TABLES, TOPIC_NAME};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    StreamSpecification, StreamViewType, TableStatus, TimeToLiveSpecification,
};
use std::time::Duration;

#[derive(Debug, Default)]
pub struct BootstrapReport {
    pub created_tables: Vec<String>,
    pub existing_tables: Vec<String>,
    pub topic_arn: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("table {table}: {source}")]
    Table {
        table: String,
        source: argus_model::StoreError,
    },
    #[error("table {0} did not become ACTIVE in time")]
    NotActive(String),
    #[error("SNS topic {topic}: {message}")]
    Topic { topic: String, message: String },
}

/// Creates what is missing. `progress` is called with one human-readable line per step.
pub async fn bootstrap(
    conf: &aws_config::SdkConfig,
    prefix: &str,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<BootstrapReport, BootstrapError> {
    let ddb = aws_sdk_dynamodb::Client::new(conf);
    let sns = aws_sdk_sns::Client::new(conf);
    let mut report = BootstrapReport::default();
    let existing: Vec<String> = {
        let mut names = Vec::new();
        let mut start = None;
        loop {
            let out = ddb
                .list_tables()
                .set_exclusive_start_table_name(start.take())
                .send()
                .await
                .map_err(|e| BootstrapError::Table {
                    table: "*".into(),
                    source: classify(e),
                })?;
            names.extend(out.table_names().iter().cloned());
            match out.last_evaluated_table_name {
                Some(n) => start = Some(n),
                None => break,
            }
        }
        names
    };
    for spec in TABLES {
        let name = format!("{prefix}{}", spec.name);
        if existing.contains(&name) {
            progress(&format!("table {name}: exists"));
            report.existing_tables.push(name);
            continue;
        }
        let err = |e| BootstrapError::Table {
            table: name.clone(),
            source: e,
        };
        let mut req = ddb
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(spec.pk)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("complete"),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(spec.pk)
                    .key_type(KeyType::Hash)
                    .build()
                    .expect("complete"),
            );
        if let Some(sk) = spec.sk {
            req = req
                .attribute_definitions(
                    AttributeDefinition::builder()
                        .attribute_name(sk)
                        .attribute_type(ScalarAttributeType::S)
                        .build()
                        .expect("complete"),
                )
                .key_schema(
                    KeySchemaElement::builder()
                        .attribute_name(sk)
                        .key_type(KeyType::Range)
                        .build()
                        .expect("complete"),
                );
        }
        if let Some(view) = spec.stream {
            req = req.stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(view))
                    .build()
                    .expect("complete"),
            );
        }
        match req.send().await {
            Ok(_) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) => {}
            Err(e) => return Err(err(classify(e))),
        }
        // Wait for ACTIVE (moto and LocalStack are instant; AWS takes seconds).
        let mut active = false;
        for _ in 0..120 {
            let d = ddb
                .describe_table()
                .table_name(&name)
                .send()
                .await
                .map_err(|e| err(classify(e)))?;
            if d.table().and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                active = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if !active {
            return Err(BootstrapError::NotActive(name));
        }
        if let Some(ttl) = spec.ttl {
            ddb.update_time_to_live()
                .table_name(&name)
                .time_to_live_specification(
                    TimeToLiveSpecification::builder()
                        .attribute_name(ttl)
                        .enabled(true)
                        .build()
                        .expect("complete"),
                )
                .send()
                .await
                .map_err(|e| err(classify(e)))?;
        }
        progress(&format!("table {name}: created"));
        report.created_tables.push(name);
    }
    let topic = format!("{prefix}{TOPIC_NAME}");
    let out = sns
        .create_topic()
        .name(&topic)
        .send()
        .await
        .map_err(|e| BootstrapError::Topic {
            topic: topic.clone(),
            message: aws_sdk_sns::error::DisplayErrorContext(e).to_string(),
        })?;
    report.topic_arn = out.topic_arn.unwrap_or_default();
    progress(&format!("topic {topic}: {}", report.topic_arn));
    Ok(report)
}
