//! argus-http: the one HTTP/1.1 edge every local Argus listener goes through (the
//! Pushgateway, blackbox `/probe`, the Alertmanager API in `argus dev`, tests and
//! benchmarks).
//!
//! A service is anything implementing [`Handler`] (`handle(http::Request<Bytes>, now)
//! -> http::Response<Bytes>`, the same shape the Lambda edge calls). [`serve`] puts it
//! on a listener with the [`Limits`]:
//!
//! - **header-read timeout**: a connection must deliver a complete request head this
//!   long after it opens or after its first byte of a later request (slow-loris), else
//!   it is closed;
//! - **idle timeout**: a kept-alive connection with no request is closed after this;
//! - **request timeout**: reading the body plus the handler; on expiry the client gets
//!   `503` with a message (the handler runs on a tracked task and is never cancelled
//!   midway, so a push is never half applied);
//! - **body and header size**: `413` above `max_body_bytes` (checked on
//!   `Content-Length` before reading, and while reading), `431` above
//!   `max_header_bytes` (hyper);
//! - **connection cap**: at `max_connections`, a new connection first displaces the
//!   oldest connection that is not in a request (idle, or still sending its head, as
//!   nginx reuses keep-alive connections when it runs short); when every one is busy
//!   the newcomer gets an immediate `503` with a message and is closed;
//! - **graceful shutdown** ([`serve_with_shutdown`]): stop accepting, let requests in
//!   progress finish (up to `shutdown_grace`), close every connection, wait for
//!   running handlers (up to the same grace) and return. Dropping the serve future
//!   instead closes every connection at once. Either way the connections are tasks
//!   the server owns: nothing uses the service after `serve` has returned, except a
//!   handler that outlived its grace.

use argus_model::{Clock, Millis};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// A service behind the edge: one request in, one response out, at time `now`.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        req: Request<Bytes>,
        now: Millis,
    ) -> impl Future<Output = Response<Bytes>> + Send;
}

/// The limits of one listener. [`Limits::default`] is what `argus dev` uses unless
/// `dev:` in argus.yml says otherwise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Time to receive a whole request head (from the connection's start, or from the
    /// first byte of a later request on a kept-alive connection).
    pub header_read_timeout: Duration,
    /// Time a kept-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Time to read the body and produce the response.
    pub request_timeout: Duration,
    /// Largest request body (413 above).
    pub max_body_bytes: usize,
    /// Largest request head: request line plus headers (431 above).
    pub max_header_bytes: usize,
    /// Open connections at most; see the crate docs for what happens at the cap.
    pub max_connections: usize,
    /// How long shutdown waits for requests in progress.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            // blackbox's longest probe by default is 119.5 s (a 120 s scrape timeout).
            request_timeout: Duration::from_secs(130),
            max_body_bytes: 16 << 20,
            max_header_bytes: 64 << 10,
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl Limits {
    /// Checks the values make a usable server; the error names the field and what is
    /// wrong with it.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        let positive = [
            ("header_read_timeout", self.header_read_timeout),
            ("idle_timeout", self.idle_timeout),
            ("request_timeout", self.request_timeout),
        ];
        for (name, d) in positive {
            if d.is_zero() {
                return Err((name, "must be greater than 0s"));
            }
        }
        if self.max_connections == 0 {
            return Err(("max_connections", "must be at least 1"));
        }
        if self.max_header_bytes < 1024 {
            return Err(("max_header_bytes", "must be at least 1024"));
        }
        Ok(())
    }
}

/// Serves `handler` on `listener` until this future is dropped, which closes every
/// open connection.
pub async fn serve<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    clock: Arc<dyn Clock>,
    limits: Limits,
) {
    serve_with_shutdown(listener, handler, clock, limits, std::future::pending()).await
}

/// Serves `handler` on `listener` until `shutdown` completes, then shuts down
/// gracefully (see the crate docs) and returns.
pub async fn serve_with_shutdown<H: Handler>(
    listener: TcpListener,
    handler: Arc<H>,
    clock: Arc<dyn Clock>,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let edge = Arc::new(Edge {
        handler,
        clock,
        limits,
        epoch: Instant::now(),
        conns: Mutex::new(HashMap::new()),
        next_id: AtomicU64::new(0),
        stopping: CancellationToken::new(),
        handlers: TaskTracker::new(),
    });
    // Connection tasks are owned here: dropping this future aborts them.
    let mut conns = JoinSet::new();
    let mut refusals = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while conns.try_join_next().is_some() {}
        while refusals.try_join_next().is_some() {}
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning; the connection
                // stays in the backlog.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match edge.admit() {
            Some(state) => {
                conns.spawn(edge.clone().connection(stream, state));
            }
            None => {
                tracing::warn!(
                    limit = edge.limits.max_connections,
                    "connection refused: every connection is busy"
                );
                // A bounded number of refusals are written politely; past that the
                // connection is just closed.
                if refusals.len() < 64 {
                    refusals.spawn(refuse(stream, edge.limits.max_connections));
                }
            }
        }
    }
    drop(listener);
    edge.stopping.cancel();
    let grace = edge.limits.shutdown_grace;
    let deadline = Instant::now() + grace;
    let _ = tokio::time::timeout_at(deadline, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    conns.abort_all();
    while conns.join_next().await.is_some() {}
    refusals.abort_all();
    edge.handlers.close();
    if tokio::time::timeout_at(deadline, edge.handlers.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            running = edge.handlers.len(),
            "handlers still running after the shutdown grace"
        );
    }
}

const FRESH: u8 = 0; // opened, waiting for the first request head
const HEAD: u8 = 1; // receiving a request head
const BUSY: u8 = 2; // a request is being read or handled
const IDLE: u8 = 3; // kept alive between requests

/// What the accept loop and the connection's task share about one connection.
struct ConnState {
    phase: AtomicU8,
    /// Milliseconds since the edge's epoch at the last phase change.
    since: AtomicU64,
    evicted: AtomicBool,
    wake: Notify,
}

struct Edge<H> {
    handler: Arc<H>,
    clock: Arc<dyn Clock>,
    limits: Limits,
    epoch: Instant,
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
    next_id: AtomicU64,
    stopping: CancellationToken,
    handlers: TaskTracker,
}

impl ConnState {
    fn set(&self, phase: u8, at: u64) {
        self.phase.store(phase, Ordering::Relaxed);
        self.since.store(at, Ordering::Relaxed);
    }

    /// When this connection must be closed, if it is still in the same phase.
    fn deadline(&self, epoch: Instant, l: &Limits) -> Option<Instant> {
        let since = epoch + Duration::from_millis(self.since.load(Ordering::Relaxed));
        match self.phase.load(Ordering::Relaxed) {
            FRESH | HEAD => Some(since + l.header_read_timeout),
            IDLE => Some(since + l.idle_timeout),
            _ => None,
        }
    }
}

impl<H: Handler> Edge<H> {
    fn elapsed_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// A slot for a new connection: a free one, or the one of the oldest connection
    /// that is not in a request (which is then told to close). `None` when every
    /// connection is busy.
    fn admit(&self) -> Option<(u64, Arc<ConnState>)> {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        if conns.len() >= self.limits.max_connections {
            let victim = conns
                .iter()
                .filter(|(_, c)| c.phase.load(Ordering::Relaxed) != BUSY)
                .min_by_key(|(_, c)| c.since.load(Ordering::Relaxed))
                .map(|(id, _)| *id)?;
            if let Some(c) = conns.remove(&victim) {
                c.evicted.store(true, Ordering::Relaxed);
                c.wake.notify_one();
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState {
            phase: AtomicU8::new(FRESH),
            since: AtomicU64::new(self.elapsed_ms()),
            evicted: AtomicBool::new(false),
            wake: Notify::new(),
        });
        conns.insert(id, state.clone());
        Some((id, state))
    }

    async fn connection(self: Arc<Self>, stream: TcpStream, (id, state): (u64, Arc<ConnState>)) {
        let io = TokioIo::new(Watched {
            inner: stream,
            state: state.clone(),
            epoch: self.epoch,
        });
        let edge = self.clone();
        let st = state.clone();
        let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
            let (edge, st) = (edge.clone(), st.clone());
            async move {
                st.set(BUSY, edge.elapsed_ms());
                let resp = edge.request(req).await;
                // The watchdog had no deadline while busy: give it the idle one.
                st.set(IDLE, edge.elapsed_ms());
                st.wake.notify_one();
                Ok::<_, Infallible>(resp.map(Full::new))
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .keep_alive(true)
            .header_read_timeout(None)
            .max_header_size(self.limits.max_header_bytes)
            .max_buf_size(self.limits.max_header_bytes.max(8192) + 8192);
        let conn = builder.serve_connection(io, svc);
        tokio::pin!(conn);
        let mut graceful = false;
        loop {
            let deadline = state.deadline(self.epoch, &self.limits);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    break;
                }
                _ = state.wake.notified() => {
                    if state.evicted.load(Ordering::Relaxed) {
                        tracing::debug!("idle connection closed to admit a new one");
                        break;
                    }
                }
                _ = self.stopping.cancelled(), if !graceful => {
                    graceful = true;
                    conn.as_mut().graceful_shutdown();
                }
                _ = sleep_until(deadline), if deadline.is_some() => {
                    if state.deadline(self.epoch, &self.limits).is_some_and(|d| d <= Instant::now()) {
                        tracing::debug!(phase = state.phase.load(Ordering::Relaxed), "connection timed out");
                        break;
                    }
                }
            }
        }
        self.conns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
    }

    async fn request(&self, req: Request<hyper::body::Incoming>) -> Response<Bytes> {
        let l = &self.limits;
        let limit = l.max_body_bytes;
        let declared = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return too_large(limit);
        }
        let deadline = Instant::now() + l.request_timeout;
        let (parts, body) = req.into_parts();
        let body =
            match tokio::time::timeout_at(deadline, Limited::new(body, limit).collect()).await {
                Ok(Ok(b)) => b.to_bytes(),
                Ok(Err(e))
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some() =>
                {
                    return too_large(limit)
                }
                Ok(Err(e)) => {
                    return closing(
                        StatusCode::BAD_REQUEST,
                        format!("reading request body: {e}\n"),
                    )
                }
                Err(_) => {
                    return closing(
                        StatusCode::REQUEST_TIMEOUT,
                        format!(
                            "request body not received within {}\n",
                            secs(l.request_timeout)
                        ),
                    )
                }
            };
        let req = Request::from_parts(parts, body);
        let now = self.clock.now_ms();
        let handler = self.handler.clone();
        // Tracked, not owned by the connection: a handler is never cancelled midway.
        let task = self
            .handlers
            .spawn(async move { handler.handle(req, now).await });
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "request handler failed");
                closing(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error while handling the request\n".into(),
                )
            }
            Err(_) => closing(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "request not answered within the request timeout of {}\n",
                    secs(l.request_timeout)
                ),
            ),
        }
    }
}

async fn sleep_until(d: Option<Instant>) {
    match d {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

fn closing(status: StatusCode, msg: String) -> Response<Bytes> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(http::header::CONNECTION, "close")
        .body(Bytes::from(msg))
        .expect("static response parts are valid")
}

fn too_large(limit: usize) -> Response<Bytes> {
    closing(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("request body exceeds the limit of {limit} bytes\n"),
    )
}

/// The answer to a connection over the cap: an immediate 503, then close (after
/// draining what the client already sent, so it reads the answer instead of a reset).
async fn refuse(mut stream: TcpStream, limit: usize) {
    let body = format!("too many connections: all {limit} are busy; retry later\n");
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\nretry-after: 1\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        stream.write_all(head.as_bytes()).await?;
        stream.shutdown().await?;
        let mut buf = [0u8; 4096];
        let mut drained = 0usize;
        while drained < 64 << 10 {
            match tokio::io::AsyncReadExt::read(&mut stream, &mut buf).await? {
                0 => break,
                n => drained += n,
            }
        }
        Ok::<_, io::Error>(())
    })
    .await;
}

/// The connection's socket, noting when bytes of a new request head arrive on an idle
/// connection (so the header-read timeout starts then).
struct Watched {
    inner: TcpStream,
    state: Arc<ConnState>,
    epoch: Instant,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            let s = &self.state;
            let phase = s.phase.load(Ordering::Relaxed);
            if phase == IDLE || phase == FRESH {
                // A fresh connection's head deadline runs from the accept; an idle
                // one's from this first byte.
                let at = if phase == IDLE {
                    self.epoch.elapsed().as_millis() as u64
                } else {
                    s.since.load(Ordering::Relaxed)
                };
                s.set(HEAD, at);
                s.wake.notify_one();
            }
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Raises this process's soft limit on open files to its hard limit (where the
/// platform has one) and returns the limit now in force, so a busy listener runs out
/// of connection slots (a clear refusal) before it runs out of descriptors.
pub fn raise_fd_limit() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}
