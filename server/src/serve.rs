//! The server process: open the database (migrating it), create the demo organisation on an empty
//! one, listen, log every request (`tracing`), and stop gracefully on Ctrl-C or SIGTERM (requests in
//! flight finish; nothing acknowledged is lost either way, since acknowledgements follow commits).

use crate::api::{AppState, router};
use crate::service::Service;
use crate::storage;
use axum::response::IntoResponse;
use std::net::SocketAddr;
use std::sync::Arc;

/// Default request body limit: 16 MiB.
pub const DEFAULT_MAX_BODY: usize = 16 << 20;

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// `sqlite:PATH` or `postgres://…`.
    pub db: String,
    /// Largest request body, bytes.
    pub max_body: usize,
    /// Create the demo organisation and campaign on an empty database.
    pub demo: bool,
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Storage(#[from] storage::StorageError),
    /// Listening failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// Address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The demo organisation could not be created.
    #[error("demo organisation: {0}")]
    Demo(crate::ApiError),
}

/// The router with its middleware (request logs, panics answered as JSON 500).
pub fn app(service: Arc<Service>, max_body: usize) -> axum::Router {
    router(AppState { service, max_body })
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            crate::ApiError::new(500, "internal", "internal error").into_response()
        }))
        .layer(tower_http::trace::TraceLayer::new_for_http())
}

/// What [`serve`] reports once it listens.
pub struct Started {
    /// The address bound (useful with port 0).
    pub addr: SocketAddr,
    /// The demo organisation's key, when it was created now.
    pub demo_key: Option<String>,
}

/// Open the database, bind, call `on_start`, and serve until Ctrl-C or SIGTERM.
pub async fn serve(options: ServeOptions, on_start: impl FnOnce(&Started)) -> Result<(), ServeError> {
    ignore_file_size_signal();
    let store = storage::open(&options.db).await?;
    let service = Arc::new(Service::new(store));
    let demo_key = if options.demo {
        service.ensure_demo().await.map_err(ServeError::Demo)?
    } else {
        None
    };
    let listener = listen(options.listen).map_err(|source| ServeError::Listen {
        addr: options.listen,
        source,
    })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Listen {
        addr: options.listen,
        source,
    })?;
    on_start(&Started { addr, demo_key });
    // Grades of LMS launches go to their gradebooks, statements to LRSs, from the database's outboxes.
    let outbox = crate::outbox::spawn_outboxes(service.clone(), std::time::Duration::from_secs(2));
    tracing::info!(%addr, db = service.store.backend(), "listening");
    let served = axum::serve(listener, app(service, options.max_body))
        .with_graceful_shutdown(shutdown())
        .await
        .map_err(|source| ServeError::Listen { addr, source });
    outbox.abort();
    served
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// Serve `app` on a bound listener until the task is dropped (tests and embedders; no signal
/// handling).
pub async fn serve_on(listener: tokio::net::TcpListener, app: axum::Router) -> std::io::Result<()> {
    axum::serve(listener, app).await
}

/// A write beyond the process's file-size limit (`ulimit -f`) must fail with an error the storage turns
/// into `503`, not kill the server: take SIGXFSZ away from its default action (termination) for the
/// life of the process. The kernel then fails the write with `EFBIG`.
fn ignore_file_size_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::from_raw(libc::SIGXFSZ)) {
            Ok(mut s) => {
                tokio::spawn(async move {
                    while s.recv().await.is_some() {
                        tracing::warn!(
                            "a write hit the file-size limit (SIGXFSZ); it fails and is answered 503"
                        );
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot handle SIGXFSZ"),
        }
    }
}

/// Bind with a deep accept queue (1024, rather than the default 128): a burst of participants
/// connecting at once waits in the queue instead of being dropped and retried a second later.
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}
