#![allow(dead_code)]

use argus_http::{Handler, Limits};
use argus_model::{Millis, SystemClock};
use bytes::Bytes;
use http::{Request, Response};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `GET|PUT /any` answers `<METHOD> <path> <body length>`; `/sleep/<ms>` answers after
/// that long.
pub struct Echo;

impl Handler for Echo {
    async fn handle(&self, req: Request<Bytes>, _now: Millis) -> Response<Bytes> {
        let path = req.uri().path().to_string();
        if let Some(ms) = path.strip_prefix("/sleep/") {
            let ms: u64 = ms.parse().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let body = format!("{} {} {}", req.method(), path, req.body().len());
        Response::new(Bytes::from(body))
    }
}

pub struct Server {
    pub addr: std::net::SocketAddr,
    pub task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(limits: Limits) -> Server {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(argus_http::serve(
        l,
        Arc::new(Echo),
        Arc::new(SystemClock),
        limits,
    ));
    Server { addr, task }
}

/// Sends `raw` on a new connection and returns everything read until the server
/// closes it (or 10 s pass, which fails the test).
pub async fn exchange(addr: std::net::SocketAddr, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    read_to_close(&mut s).await
}

pub async fn read_to_close(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let r = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 8192];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(r.is_ok(), "server did not close the connection within 10 s");
    String::from_utf8_lossy(&out).into_owned()
}

/// True when the server has closed `s` (EOF or reset) within `within`.
pub async fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let until = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(until, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}
