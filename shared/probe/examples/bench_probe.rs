//! Benchmark: Argus' prober vs prometheus-blackbox-exporter on the same local targets.
//!
//! `cargo run --release -p argus-probe --example bench_probe -- [N] [CONCURRENCY]`
//!
//! Targets are served by a child process (this binary with `--serve`) so neither side's
//! CPU figure includes the servers: `http://127.0.0.1:PORT/delay/<50..200>` answers after
//! 50–200 ms. Argus' CPU is getrusage(RUSAGE_SELF) around `run_many`; the exporter's is
//! utime+stime from /proc/<pid>/stat around N concurrent `GET /probe` requests.

use argus_model::Target;
use argus_probe::{load_modules, Prober, ProberConfig};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io::{BufRead, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn rusage() -> (f64, i64) {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    (t(u.ru_utime) + t(u.ru_stime), u.ru_maxrss)
}

fn proc_cpu(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // fields after ")" start at state (3rd); utime is 14th, stime 15th overall.
    let ut: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let st: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let tck = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ut + st) / tck
}

fn proc_rss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn serve_targets() {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", l.local_addr().unwrap().port());
    std::io::stdout().flush().unwrap();
    loop {
        let Ok((s, _)) = l.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let svc = service_fn(|req: http::Request<hyper::body::Incoming>| async move {
                let ms: u64 = req
                    .uri()
                    .path()
                    .rsplit('/')
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(
                    b"hello from a target\n",
                ))))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(s), svc)
                .await;
        });
    }
}

async fn get(addr: std::net::SocketAddr, path: &str) -> bool {
    let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
        return false;
    };
    if s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .is_err()
    {
        return false;
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out).await;
    String::from_utf8_lossy(&out).contains("probe_success 1")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--serve") {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(serve_targets());
        return;
    }
    if args.get(1).map(String::as_str) == Some("--argus-endpoint") {
        // Argus' blackbox-compatible /probe endpoint in its own process (apples to apples).
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            println!("{}", l.local_addr().unwrap().port());
            std::io::stdout().flush().unwrap();
            let modules = Arc::new(
                load_modules("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n").unwrap(),
            );
            argus_probe::serve(
                Arc::new(Prober::new(ProberConfig::default())),
                modules,
                l,
                Arc::new(argus_model::SystemClock),
            )
            .await;
        });
        return;
    }
    let n: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(1000);
    let conc: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(250);

    // Targets in a child process.
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--serve")
        .stdout(Stdio::piped())
        .spawn()
        .expect("target server");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().expect("port");
    let urls: Vec<String> = (0..n)
        .map(|i| format!("http://127.0.0.1:{port}/delay/{}", 50 + (i * 37) % 151))
        .collect();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let modules =
        load_modules("modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n").unwrap();
    let m = modules.get("http_2xx").unwrap().clone();
    let prober = Arc::new(Prober::new(ProberConfig::default()));

    // Warm-up (runtime, TLS roots, allocator).
    rt.block_on(
        prober.run_many(
            urls.iter()
                .take(20)
                .map(|u| (Target::new(u), m.clone()))
                .collect(),
            20,
            0,
        ),
    );

    let (cpu0, _) = rusage();
    let t0 = Instant::now();
    let out = rt.block_on(prober.run_many(
        urls.iter().map(|u| (Target::new(u), m.clone())).collect(),
        conc,
        0,
    ));
    let argus_wall = t0.elapsed();
    let (cpu1, maxrss_kb) = rusage();
    let argus_ok = out.iter().filter(|o| o.success).count();
    let argus_cpu = cpu1 - cpu0;
    drop(out);

    // The real exporter, driven with the same concurrency.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("blackbox.yml");
    std::fs::write(
        &cfg,
        "modules:\n  http_2xx:\n    prober: http\n    timeout: 5s\n",
    )
    .unwrap();
    let bb_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut bb = Command::new("prometheus-blackbox-exporter")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--web.listen-address=127.0.0.1:{bb_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-blackbox-exporter (apt-get install prometheus-blackbox-exporter)");
    let bb_addr: std::net::SocketAddr = ([127, 0, 0, 1], bb_port).into();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(bb_addr).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let run_bb = |bb_addr: std::net::SocketAddr, urls: Vec<String>| {
        rt.block_on(async {
            use futures::StreamExt;
            futures::stream::iter(urls)
                .map(|u| async move {
                    get(
                        bb_addr,
                        &format!(
                            "/probe?module=http_2xx&target={}",
                            url::form_urlencoded::byte_serialize(u.as_bytes()).collect::<String>()
                        ),
                    )
                    .await
                })
                .buffer_unordered(conc)
                .collect::<Vec<bool>>()
                .await
        })
    };
    run_bb(bb_addr, urls.iter().take(20).cloned().collect());
    let c0 = proc_cpu(bb.id());
    let t0 = Instant::now();
    let res = run_bb(bb_addr, urls.clone());
    let bb_wall = t0.elapsed();
    let bb_cpu = proc_cpu(bb.id()) - c0;
    let bb_ok = res.iter().filter(|x| **x).count();
    let bb_rss = proc_rss_kb(bb.id());
    let _ = bb.kill();
    let _ = bb.wait();

    // Argus' /probe endpoint in a child process, driven the same way.
    let mut ep = Command::new(std::env::current_exe().unwrap())
        .arg("--argus-endpoint")
        .stdout(Stdio::piped())
        .spawn()
        .expect("argus endpoint");
    let mut line = String::new();
    std::io::BufReader::new(ep.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ep_addr: std::net::SocketAddr =
        ([127, 0, 0, 1], line.trim().parse::<u16>().expect("port")).into();
    run_bb(ep_addr, urls.iter().take(20).cloned().collect());
    let c0 = proc_cpu(ep.id());
    let t0 = Instant::now();
    let res = run_bb(ep_addr, urls.clone());
    let ep_wall = t0.elapsed();
    let ep_cpu = proc_cpu(ep.id()) - c0;
    let ep_ok = res.iter().filter(|x| **x).count();
    let ep_rss = proc_rss_kb(ep.id());
    let _ = ep.kill();
    let _ = ep.wait();
    let _ = child.kill();
    let _ = child.wait();

    let per = |cpu: f64| cpu * 1000.0 / n as f64;
    println!("probes: {n} http_2xx targets, latency 50-200 ms, concurrency {conc}");
    println!("argus:    wall {:>7.3} s  cpu {:>6.3} s  ({:.3} cpu-s per 1000 probes)  ok {argus_ok}/{n}  maxrss {} MiB", argus_wall.as_secs_f64(), argus_cpu, per(argus_cpu), maxrss_kb / 1024);
    println!("blackbox: wall {:>7.3} s  cpu {:>6.3} s  ({:.3} cpu-s per 1000 probes)  ok {bb_ok}/{n}  VmHWM {} MiB", bb_wall.as_secs_f64(), bb_cpu, per(bb_cpu), bb_rss / 1024);
    println!("argus /probe endpoint: wall {:>7.3} s  cpu {:>6.3} s  ({:.3} cpu-s per 1000 probes)  ok {ep_ok}/{n}  VmHWM {} MiB", ep_wall.as_secs_f64(), ep_cpu, per(ep_cpu), ep_rss / 1024);
    println!(
        "cpu ratio argus run_many / blackbox: {:.2}x (goal <= 0.5x)",
        argus_cpu / bb_cpu.max(1e-9)
    );
    println!(
        "cpu ratio argus /probe endpoint / blackbox /probe: {:.2}x",
        ep_cpu / bb_cpu.max(1e-9)
    );
    println!(
        "wall for {n} targets: {:.3} s (goal <= 10 s)",
        argus_wall.as_secs_f64()
    );
    assert_eq!(
        argus_ok, n,
        "every Argus probe of a healthy target must succeed"
    );
    assert!(
        argus_wall <= Duration::from_secs(10),
        "goal missed: {n} targets took {argus_wall:?}"
    );
}
