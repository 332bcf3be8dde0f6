//! The API on a local listener (`argus dev`, tests): the shared HTTP edge
//! ([`argus_http`], with its header/idle/request timeouts, connection cap and body
//! limit) in front of [`QueryService::handle`]. POSTed query forms are capped at 1 MiB.

use crate::QueryService;
use argus_http::{Handler, Limits};
use argus_model::{Clock, Millis};
use bytes::Bytes;
use std::future::Future;
use std::sync::Arc;

const BODY_LIMIT: usize = 1 << 20;

impl Handler for QueryService {
    fn handle(
        &self,
        req: http::Request<Bytes>,
        now: Millis,
    ) -> impl Future<Output = http::Response<Bytes>> + Send {
        QueryService::handle(self, req, now)
    }
}

/// The edge's limits for the API: the defaults with a 1 MiB body limit.
pub fn limits() -> Limits {
    Limits {
        max_body_bytes: BODY_LIMIT,
        ..Limits::default()
    }
}

/// Serves `svc` on `listener` until the future is dropped (which ends its connections).
pub async fn serve(
    svc: Arc<QueryService>,
    listener: tokio::net::TcpListener,
    clock: Arc<dyn Clock>,
) {
    argus_http::serve(listener, svc, clock, limits()).await
}
