//! `${ssm:...}` and `${env:...}` references are substituted into the parsed string
//! fields of a configuration, not into its text: secrets holding `"`, `#`, `: ` or a
//! newline come out byte for byte and change nothing else in the document (issue 17).
//! Against SSM in moto.

use argus_app::pipeline::expand_refs;
use aws_config::Region;
use aws_sdk_ssm::config::{Credentials, SharedCredentialsProvider};

async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "test",
        )))
        .load()
        .await
}

const NASTY: [(&str, &str); 4] = [
    ("/argus/quote", "pa\"ss\\word\""),
    ("/argus/hash", "token # not a comment"),
    ("/argus/colon", "key: value, [x] {y}"),
    (
        "/argus/newline",
        "line one\nreceiver: evil\n  - name: injected",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_values_never_yaml() {
    let moto = argus_testkit::moto();
    let conf = sdk(&moto.url()).await;
    let ssm = aws_sdk_ssm::Client::new(&conf);
    for (name, value) in NASTY {
        ssm.put_parameter()
            .name(name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .unwrap();
    }
    let am = r#"# a comment naming ${ssm:/argus/absent} is neither resolved nor required
route:
  receiver: team
receivers:
  - name: team
    webhook_configs:
      - url: "https://hooks.example/${ssm:/argus/hash}" # trailing comment ${ssm:/argus/absent}
    slack_configs:
      - api_url: https://slack.example/hook
        username: ${ssm:/argus/quote}
        channel: '#alerts'
        title: ${ssm:/argus/colon}
        text: 'before ${ssm:/argus/newline} after'
"#;
    let out = expand_refs(am, Some(&conf)).await.unwrap();
    let cfg = argus_notify::load_config(&out).unwrap();
    assert_eq!(cfg.receivers.len(), 1, "nothing injected: {out}");
    let r = &cfg.receivers[0];
    assert_eq!(r.name, "team");
    assert_eq!(
        r.webhook_configs[0].url,
        "https://hooks.example/token # not a comment"
    );
    let s = &r.slack_configs[0];
    assert_eq!(s.username, NASTY[0].1);
    assert_eq!(s.channel, "#alerts");
    assert_eq!(s.title, NASTY[2].1);
    assert_eq!(s.text, format!("before {} after", NASTY[3].1));

    // A missing parameter is an error naming it, never an empty value.
    let e = expand_refs("a: ${ssm:/argus/absent}\n", Some(&conf))
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains("/argus/absent"), "{e:#}");
    // Without references the text is returned as it is (comments and layout kept).
    let plain = "route: {receiver: x} # c\nreceivers: [{name: x}]\n";
    assert_eq!(expand_refs(plain, Some(&conf)).await.unwrap(), plain);
}

#[tokio::test]
async fn env_references_are_values_too() {
    // SAFETY (edition 2021: set_var is safe): a variable only this test reads.
    std::env::set_var("ARGUS_TEST_NASTY_SECRET", "a\"b # c: d\ne: f");
    let out = expand_refs("x: ${env:ARGUS_TEST_NASTY_SECRET}\ny: 1\n", None)
        .await
        .unwrap();
    let v: serde_json::Value = serde_saphyr::from_str(&out).unwrap();
    assert_eq!(v["x"], "a\"b # c: d\ne: f");
    assert_eq!(v["y"], 1);
    assert!(v.get("e").is_none());
    let e = expand_refs("x: ${ssm:/p}\n", None).await.unwrap_err();
    assert!(format!("{e:#}").contains("no AWS endpoint"), "{e:#}");
}
