//! The edge's limits, each against a raw socket or a real client: slow-loris heads are
//! cut at the header-read timeout, kept-alive connections live for the idle timeout
//! (not the shorter header timeout), oversize bodies get 413 and oversize heads 431,
//! a slow handler gets 503 at the request timeout, at the connection cap an idle
//! connection makes room for a new one and busy ones get an immediate 503, and
//! shutdown lets a request in progress finish and then closes everything.

mod common;

use argus_http::Limits;
use argus_model::SystemClock;
use common::*;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn quick() -> Limits {
    Limits {
        header_read_timeout: Duration::from_millis(400),
        idle_timeout: Duration::from_secs(3),
        ..Limits::default()
    }
}

#[tokio::test]
async fn a_slow_loris_head_is_closed_at_the_header_read_timeout() {
    let srv = start(quick()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    // One header line every 100 ms, for up to 5 s: the server must give up first.
    let mut cut = false;
    for i in 0..50 {
        if s.write_all(format!("X-{i}: y\r\n").as_bytes())
            .await
            .is_err()
        {
            cut = true;
            break;
        }
        if closed_within(&mut s, Duration::from_millis(100)).await {
            cut = true;
            break;
        }
    }
    assert!(cut, "a head trickled for 5 s was never cut off");
    // A connection that never sends anything is cut as well.
    let mut silent = TcpStream::connect(srv.addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(5)).await);
    // The server still answers a normal client.
    let body = reqwest::get(format!("http://{}/ok", srv.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "GET /ok 0");
}

#[tokio::test]
async fn a_kept_alive_connection_waits_for_the_idle_timeout_then_closes() {
    let srv = start(quick()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let req = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    s.write_all(req).await.unwrap();
    assert!(!closed_within(&mut s, Duration::from_millis(300)).await);
    // Longer than the header-read timeout, shorter than the idle timeout: still open,
    // and a second request on it is answered.
    assert!(!closed_within(&mut s, Duration::from_millis(700)).await);
    s.write_all(req).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read(&mut s, &mut buf),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).contains("GET /a 0"));
    // Then nothing more: closed at the idle timeout.
    assert!(closed_within(&mut s, Duration::from_secs(6)).await);
}

#[tokio::test]
async fn oversize_bodies_get_413_and_oversize_heads_431() {
    let srv = start(Limits {
        max_body_bytes: 1000,
        max_header_bytes: 4096,
        ..Limits::default()
    })
    .await;
    let client = reqwest::Client::new();
    let url = format!("http://{}/metrics/job/x", srv.addr);
    let ok = client
        .put(&url)
        .body(vec![b'a'; 1000])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "PUT /metrics/job/x 1000");
    // Declared too large: refused before the body is read.
    let big = client
        .put(&url)
        .body(vec![b'a'; 1001])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    assert_eq!(
        big.text().await.unwrap(),
        "request body exceeds the limit of 1000 bytes\n"
    );
    // Chunked, so only reading finds out.
    let chunked = exchange(
        srv.addr,
        format!(
            "PUT /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n{}\r\n3e8\r\n{}\r\n0\r\n\r\n",
            "a".repeat(1000),
            "a".repeat(1000)
        )
        .as_bytes(),
    )
    .await;
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
    let head = exchange(
        srv.addr,
        format!(
            "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "b".repeat(5000)
        )
        .as_bytes(),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 431"), "{head}");
}

#[tokio::test]
async fn a_request_over_its_time_gets_503_with_a_message() {
    let srv = start(Limits {
        request_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let r = reqwest::get(format!("http://{}/sleep/5000", srv.addr))
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.text().await.unwrap(),
        "request not answered within the request timeout of 0.3s\n"
    );
    let r = reqwest::get(format!("http://{}/sleep/10", srv.addr))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn at_the_cap_an_idle_connection_makes_room_and_busy_ones_refuse() {
    let srv = start(Limits {
        max_connections: 2,
        ..Limits::default()
    })
    .await;
    // Two idle connections fill the cap; a normal request still gets through, and
    // the oldest idle connection is the one closed for it.
    let mut idle1 = TcpStream::connect(srv.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut idle2 = TcpStream::connect(srv.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let body = reqwest::get(format!("http://{}/x", srv.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(body, "GET /x 0");
    assert!(closed_within(&mut idle1, Duration::from_secs(2)).await);
    assert!(!closed_within(&mut idle2, Duration::from_millis(100)).await);
    drop(idle2);

    // Two requests in progress fill it for real: the next connection is refused at
    // once with a message, and is served again when they are done.
    let slow = |path: &'static str| {
        let url = format!("http://{}{path}", srv.addr);
        tokio::spawn(async move { reqwest::get(url).await.unwrap().status() })
    };
    let a = slow("/sleep/1500");
    let b = slow("/sleep/1500");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let refused = exchange(srv.addr, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(
        refused.ends_with("too many connections: all 2 are busy; retry later\n"),
        "{refused}"
    );
    assert_eq!(a.await.unwrap(), 200);
    assert_eq!(b.await.unwrap(), 200);
    let again = reqwest::get(format!("http://{}/x", srv.addr))
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
}

#[tokio::test]
async fn shutdown_lets_a_request_finish_then_closes_everything() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let stop = tokio_util_token();
    let server = tokio::spawn(argus_http::serve_with_shutdown(
        l,
        Arc::new(Echo),
        Arc::new(SystemClock),
        Limits::default(),
        {
            let stop = stop.clone();
            async move { stop.notified().await }
        },
    ));
    let mut idle = TcpStream::connect(addr).await.unwrap();
    let inflight = tokio::spawn(async move {
        let r = reqwest::get(format!("http://{addr}/sleep/700"))
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.notify_one();
    let (status, body) = inflight.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, "GET /sleep/700 0");
    assert!(closed_within(&mut idle, Duration::from_secs(5)).await);
    tokio::time::timeout(Duration::from_secs(6), server)
        .await
        .expect("serve returned after its grace")
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "still accepting");
}

fn tokio_util_token() -> Arc<tokio::sync::Notify> {
    Arc::new(tokio::sync::Notify::new())
}
