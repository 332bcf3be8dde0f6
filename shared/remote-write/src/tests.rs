use super::*;

fn parse(yaml: &str) -> Result<Vec<RemoteWriteConfig>, String> {
    let cfgs: Vec<RemoteWriteConfig> = serde_saphyr::from_str(yaml).map_err(|e| e.to_string())?;
    validate_all(&cfgs).map_err(|e| e.to_string())?;
    Ok(cfgs)
}

#[test]
fn defaults_are_prometheus_2_42() {
    let c = parse("- url: http://127.0.0.1:9090/api/v1/write\n").unwrap();
    let c = &c[0];
    assert_eq!(c.remote_timeout, Duration::from_secs(30));
    assert_eq!(c.queue_config.max_samples_per_send, 500);
    assert_eq!(c.queue_config.min_backoff, Duration::from_millis(30));
    assert_eq!(c.queue_config.max_backoff, Duration::from_secs(5));
    assert!(!c.queue_config.retry_on_http_429);
    assert_eq!(c.queue_name().len(), 6);
    let full = parse(
        r#"
- url: https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1/api/v1/remote_write
  name: amp
  remote_timeout: 10s
  headers: {X-Scope-OrgID: team-a}
  sigv4: {region: us-east-1, role_arn: "arn:aws:iam::123456789012:role/w"}
  write_relabel_configs:
    - {source_labels: [__name__], regex: 'go_.*', action: drop}
  queue_config: {max_samples_per_send: 1000, min_backoff: 100ms, max_backoff: 10s, retry_on_http_429: true, max_backlog_samples: 5000}
- url: http://mimir:9009/api/v1/push
  basic_auth: {username: u, password_file: secret.txt}
"#,
    )
    .unwrap();
    assert_eq!(full[0].queue_name(), "amp");
    assert_eq!(full[0].queue_config.max_backlog_samples, 5000);
    assert_eq!(
        full[1]
            .basic_auth
            .as_ref()
            .unwrap()
            .password_file
            .as_deref(),
        Some("secret.txt")
    );
}

#[test]
fn bad_configs_name_the_field() {
    let cases = [
        ("- url: http://a/\n  remote_timout: 1s\n", "remote_timout"),
        (
            "- url: http://a/\n  queue_config: {max_samples: 1}\n",
            "max_samples",
        ),
        ("- url: http://a/\n  sigv4: {regon: x}\n", "regon"),
        ("- remote_timeout: 1s\n", "url"),
        ("- url: ftp://a/\n", "remote_write[0].url"),
        ("- url: 'not a url'\n", "remote_write[0].url"),
        (
            "- url: http://a/\n  headers: {Authorization: x}\n",
            "authorization header must be changed via",
        ),
        (
            "- url: http://a/\n  headers: {Content-Type: x}\n",
            "Content-Type is a reserved header",
        ),
        (
            "- url: http://a/\n  basic_auth: {username: u, password: p, password_file: f}\n",
            "at most one of basic_auth password & password_file",
        ),
        (
            "- url: http://a/\n  basic_auth: {username: u}\n  sigv4: {}\n",
            "at most one of basic_auth, authorization, oauth2, & sigv4",
        ),
        (
            "- url: http://a/\n  authorization: {type: Basic, credentials: x}\n",
            "use \"basic_auth\" instead",
        ),
        (
            "- url: http://a/\n  sigv4: {access_key: A}\n",
            "Access key and Secret Key",
        ),
        (
            "- url: http://a/\n  write_relabel_configs: [{action: hashmod, target_label: x}]\n",
            "write_relabel_configs[0]: relabel configuration for hashmod requires non-zero modulus",
        ),
        (
            "- url: http://a/\n  queue_config: {capacity: 10}\n",
            "remote_write[0].queue_config.capacity`: not supported",
        ),
        (
            "- url: http://a/\n  queue_config: {max_samples_per_send: 0}\n",
            "max_samples_per_send",
        ),
        (
            "- url: http://a/\n- url: http://a/\n",
            "found multiple remote write configs",
        ),
    ];
    for (yaml, want) in cases {
        let e = parse(yaml).expect_err(yaml);
        assert!(e.contains(want), "{yaml}: {e}");
    }
}

#[test]
fn wire_format_round_trips() {
    let l = Labels::from_pairs([("__name__", "up"), ("job", "probe")]);
    let req = proto::WriteRequest {
        timeseries: vec![proto::TimeSeries::new(&l, 1_700_000_000_000, 1.5)],
    };
    let body = proto::encode(&req);
    // Snappy block format: starts with the uncompressed length as a varint, no stream header.
    assert_ne!(&body[..4], b"\xff\x06\x00\x00");
    let back = proto::decode(&body).unwrap();
    assert_eq!(back, req);
    assert_eq!(back.timeseries[0].labels(), l);
    // Labels are sent sorted by name.
    assert_eq!(back.timeseries[0].labels[0].name, "__name__");
}

#[test]
fn big_batches_split_under_the_item_limit() {
    // Incompressible label values (an LCG), 4 KB each.
    let mut x: u64 = 42;
    let mut noise = || {
        (0..2000)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                format!("{:02x}", (x >> 56) as u8)
            })
            .collect::<String>()
    };
    let series: Vec<proto::TimeSeries> = (0..400)
        .map(|i| {
            let l = Labels::from_pairs([("__name__", format!("m{i}")), ("v", noise())]);
            proto::TimeSeries::new(&l, 1, i as f64)
        })
        .collect();
    let mut out = Vec::new();
    encode_batches(&series, &mut out);
    assert!(out.len() > 1);
    assert!(out.iter().all(|b| b.body.len() <= MAX_BODY_BYTES));
    assert_eq!(out.iter().map(|b| b.samples).sum::<usize>(), 400);
}
