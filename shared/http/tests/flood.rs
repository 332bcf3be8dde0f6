//! Issue 11, defect 3: 1,100 idle connections against a server at the usual soft
//! descriptor limit of 1,024 used to leave a normal client with no answer at all (the
//! server hit EMFILE and stopped accepting). The server here runs in a child process
//! (this test binary, re-run with `ARGUS_HTTP_FLOOD_SERVER` set) whose soft limit is
//! lowered to 1,024; the connection cap keeps it under that limit by closing the
//! oldest idle connection for each new one, so a normal PUT and GET are answered.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

const SERVER_ENV: &str = "ARGUS_HTTP_FLOOD_SERVER";

/// The child: lowers its soft limit to 1,024, serves, prints its port, runs until
/// killed. A no-op when run as an ordinary test.
#[test]
fn flood_server_child() {
    let Ok(cap) = std::env::var(SERVER_ENV) else {
        return;
    };
    let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
    rlimit::Resource::NOFILE.set(1024, hard).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        // libtest may have started a line ("test flood_server_child ... "): a marker
        // the parent finds anywhere in a line.
        println!("\nARGUS_FLOOD_PORT={}", l.local_addr().unwrap().port());
        argus_http::serve(
            l,
            std::sync::Arc::new(common::Echo),
            std::sync::Arc::new(argus_model::SystemClock),
            argus_http::Limits {
                max_connections: cap.parse().unwrap(),
                // Longer than the client waits: only the cap can make room in time.
                header_read_timeout: Duration::from_secs(60),
                ..Default::default()
            },
        )
        .await
    });
}

struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_normal_client_is_answered_beside_1100_idle_connections_at_a_1024_fd_limit() {
    if std::env::var(SERVER_ENV).is_ok() {
        return;
    }
    // The client side needs its own 1,100 descriptors.
    argus_http::raise_fd_limit().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "flood_server_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(SERVER_ENV, "900")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let child = Child(child);
    let port: u16 = BufReader::new(out)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| {
            l.split_once("ARGUS_FLOOD_PORT=")
                .map(|(_, p)| p.trim().parse().unwrap())
        })
        .expect("child server printed its port");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let idle: Vec<std::net::TcpStream> = (0..1100)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    // Let the server accept them all (and close the oldest 200).
    std::thread::sleep(Duration::from_millis(500));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let put = client
            .put(format!("http://{addr}/metrics/job/x"))
            .body("x 1\n")
            .send()
            .await
            .expect("PUT answered beside the idle connections");
        assert_eq!(put.status(), 200);
        assert_eq!(put.text().await.unwrap(), "PUT /metrics/job/x 4");
        let get = client
            .get(format!("http://{addr}/metrics"))
            .send()
            .await
            .expect("GET answered beside the idle connections");
        assert_eq!(get.text().await.unwrap(), "GET /metrics 0");
    });
    drop(idle);
    drop(child);
}
