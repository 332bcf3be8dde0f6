//! Test harness shared by every crate's tests: free loopback ports, real peer processes
//! (moto server, Prometheus' Debian tools) started on 127.0.0.1 and killed on drop.
//!
//! Peers are installed by `tests/run` (the README's test command): moto into the
//! repository's `.venv`, the Prometheus tools from Debian packages. A missing peer is a
//! test failure with a message saying how to install it, never a silent skip.

pub mod faults;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Root of the repository (where `Cargo.toml` of the workspace is): found from the
/// running test's `CARGO_MANIFEST_DIR` (set by cargo and nextest at run time), so a
/// harness built once serves any checkout sharing the target directory.
pub fn repo_root() -> PathBuf {
    let start = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let mut dir = start.canonicalize().expect("manifest dir");
    loop {
        let manifest = dir.join("Cargo.toml");
        if std::fs::read_to_string(&manifest).is_ok_and(|t| t.contains("[workspace]")) {
            return dir;
        }
        if !dir.pop() {
            panic!("no workspace Cargo.toml above {}", start.display());
        }
    }
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Finds an executable: the repo's `.venv/bin`, then `PATH`. Panics with an install hint.
pub fn tool(name: &str) -> PathBuf {
    let venv = repo_root().join(".venv/bin").join(name);
    if venv.exists() {
        return venv;
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("test peer `{name}` is not installed: run `bash tests/run` once (it installs moto into .venv and the Prometheus tools with apt-get)")
}

/// Python interpreter of the repo's venv (with prometheus_client, moto...).
pub fn python() -> PathBuf {
    tool("python3")
}

/// Waits until something accepts TCP connections on the address.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    false
}

/// A child process killed (and reaped) when dropped.
pub struct Peer {
    pub name: String,
    pub port: u16,
    child: Child,
    log: PathBuf,
}

impl Peer {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    /// What the peer printed so far (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The peer runs with the machine's transparent-huge-page policy, whatever its parent's:
/// a benchmark built with mimalloc's `no_thp` has THP disabled for itself, a flag that
/// children inherit, and a peer compared against it must not be handicapped by that.
#[cfg(target_os = "linux")]
fn default_thp(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is a plain system call, async-signal-safe, as pre_exec requires; it
    // touches only the child's own flag. Best effort: a kernel without the option starts
    // the peer as it is.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_THP_DISABLE, 0, 0, 0, 0);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn default_thp(_cmd: &mut Command) {}

/// Starts `program args...` (args may contain `{port}`, replaced by a free port) and waits
/// until it listens on that port.
pub fn spawn_peer(name: &str, program: &Path, args: &[&str]) -> Peer {
    spawn_peer_in(name, program, args, None)
}

pub fn spawn_peer_in(name: &str, program: &Path, args: &[&str], cwd: Option<&Path>) -> Peer {
    for _attempt in 0..3 {
        let port = free_port();
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("{port}", &port.to_string()))
            .collect();
        let log = std::env::temp_dir().join(format!("argus-peer-{name}-{port}.log"));
        let out = std::fs::File::create(&log).expect("peer log");
        let mut cmd = Command::new(program);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        if let Some(d) = cwd {
            cmd.current_dir(d);
        }
        default_thp(&mut cmd);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({program:?}): {e}"));
        let mut peer = Peer {
            name: name.to_string(),
            port,
            child,
            log,
        };
        if wait_for_port(peer.addr(), Duration::from_secs(30)) {
            return peer;
        }
        if let Ok(Some(_)) = peer.child.try_wait() {
            // Lost a port race or failed to start: try another port.
            eprintln!("{name} exited early: {}", peer.log());
            continue;
        }
        panic!(
            "{name} did not listen on {} within 30s: {}",
            peer.addr(),
            peer.log()
        );
    }
    panic!("{name} could not be started");
}

/// moto server (AWS API emulator: DynamoDB, SNS, SQS, Lambda...) on a free port.
pub fn moto() -> Peer {
    let bin = tool("moto_server");
    spawn_peer("moto", &bin, &["-H", "127.0.0.1", "-p", "{port}"])
}

/// Environment for AWS SDK clients pointed at an emulator (dummy credentials).
pub fn aws_env(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
    ]
}

/// `<target>/<profile>` of the running test binary (`<target>/<profile>/deps/<test>-*`):
/// where cargo put the workspace's binaries in the same build.
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    exe.parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>/deps/<test>")
        .to_path_buf()
}

/// The workspace binaries `names` (`argus`, `probe`, `pushgateway`, `evaluator`,
/// `notifier`, `query`) of this test's build: `tests/run` builds them with the
/// workspace (`cargo build --workspace --all-targets`); when one is missing (a test run
/// on its own) that same command builds them, so the feature set, and so every
/// dependency artifact, is the workspace's (a `cargo build -p <one crate>` resolves other
/// features and rebuilds half the dependency tree). After editing the sources, run the
/// build again before a single test: an existing binary is used as it is.
pub fn workspace_bins(names: &[&str]) -> PathBuf {
    let dir = profile_dir();
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|b| !dir.join(b).is_file())
        .collect();
    if missing.is_empty() {
        return dir;
    }
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    // As a user runs cargo: without the variables `cargo test` sets for this process
    // (they change the build's fingerprint).
    for (k, _) in std::env::vars() {
        if (k.starts_with("CARGO_") && k != "CARGO_HOME" && k != "CARGO_TARGET_DIR")
            || k.starts_with("__CARGO")
            || k == "RUSTC_BOOTSTRAP"
        {
            build.env_remove(k);
        }
    }
    eprintln!(
        "building the workspace for {missing:?} (cargo build --workspace --all-targets --locked)"
    );
    let st = build
        .current_dir(repo_root())
        .args(["build", "--workspace", "--all-targets", "--locked"])
        .status()
        .expect("cargo build");
    assert!(st.success(), "building {missing:?} failed");
    dir
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn thp_enabled(cmd: &mut Command) -> String {
        let out = cmd.arg("/proc/self/status").output().expect("cat");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("THP_enabled:").map(|v| v.trim().to_string()))
            .expect("the kernel reports THP_enabled")
    }

    /// A parent with THP disabled (as mimalloc's `no_thp` leaves a benchmark) starts
    /// its peers with THP allowed; without `default_thp` they inherit the flag.
    #[test]
    fn peers_do_not_inherit_a_disabled_thp() {
        // SAFETY: a system call on this test process's own flag.
        assert_eq!(
            unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) },
            0
        );
        assert_eq!(thp_enabled(&mut Command::new("cat")), "0", "inherited");
        let mut cmd = Command::new("cat");
        default_thp(&mut cmd);
        assert_eq!(thp_enabled(&mut cmd), "1");
    }
}
