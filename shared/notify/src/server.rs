//! The API on a local listener (`argus dev`, 127.0.0.1:9093, tests): the shared HTTP
//! edge ([`argus_http`]) in front of [`Notifier::handle_api`].

use crate::service::Notifier;
use argus_http::{Handler, Limits};
use argus_model::{Clock, Millis};
use bytes::Bytes;
use std::future::Future;
use std::sync::Arc;

/// Largest request body accepted (a big batch of alerts).
pub const MAX_BODY: usize = 16 << 20;

impl Handler for Notifier {
    fn handle(
        &self,
        req: http::Request<Bytes>,
        now: Millis,
    ) -> impl Future<Output = http::Response<Bytes>> + Send {
        self.handle_api(req, now)
    }
}

fn limits() -> Limits {
    Limits {
        max_body_bytes: MAX_BODY,
        ..Limits::default()
    }
}

/// Serves the API on `listener` with the default [`Limits`] until the future is
/// dropped (which closes its connections).
pub async fn serve(
    notifier: Arc<Notifier>,
    listener: tokio::net::TcpListener,
    clock: Arc<dyn Clock>,
) -> std::io::Result<()> {
    argus_http::serve(listener, notifier, clock, limits()).await;
    Ok(())
}

/// Same, shutting down gracefully when `shutdown` completes.
pub async fn serve_with_shutdown(
    notifier: Arc<Notifier>,
    listener: tokio::net::TcpListener,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    argus_http::serve_with_shutdown(listener, notifier, clock, limits(), shutdown).await;
    Ok(())
}
