//! The gateway on a local listener (`argus dev`, tests, benchmarks): the shared HTTP
//! edge ([`argus_http`]) in front of [`Gateway::handle`].

use crate::Gateway;
use argus_http::{Handler, Limits};
use argus_model::{Clock, Millis};
use bytes::Bytes;
use std::future::Future;
use std::sync::Arc;

impl Handler for Gateway {
    fn handle(
        &self,
        req: http::Request<Bytes>,
        now: Millis,
    ) -> impl Future<Output = http::Response<Bytes>> + Send {
        Gateway::handle(self, req, now)
    }
}

/// The edge's limits for this gateway: the defaults, with its body limit (413 above,
/// before reading; the gateway applies it again after gzip decompression).
pub fn limits(gw: &Gateway) -> Limits {
    Limits {
        max_body_bytes: gw.config().body_limit_bytes,
        ..Limits::default()
    }
}

/// Serves the gateway on `listener` until the task is dropped/aborted, which also
/// ends its open connections (each runs on a task this future owns, so nothing keeps
/// using the gateway after `argus dev` stops it).
pub async fn serve(gw: Arc<Gateway>, listener: tokio::net::TcpListener, clock: Arc<dyn Clock>) {
    let limits = limits(&gw);
    argus_http::serve(listener, gw, clock, limits).await
}
