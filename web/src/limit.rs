//! A cap on the page's open connections. Each accepted TCP stream holds a semaphore permit for
//! its whole life; past the cap a new connection is closed at once, so clients that open
//! connections and sit on them cannot take the descriptors cameras, sinks and the outbox need.
//! Written here because axum-server has no connection limit and tower's limits count
//! requests, not connections; it is an [`Accept`] stage under the TLS acceptor.

use axum_server::accept::Accept;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections the page serves at once.
pub const MAX_CONNECTIONS: usize = 256;

#[derive(Clone)]
pub struct LimitAcceptor {
    permits: Arc<Semaphore>,
    refused: Arc<AtomicU64>,
    /// At most one line every 10 s about refusals.
    logged: Arc<watchpost_contracts::throttle::Every>,
}

impl LimitAcceptor {
    pub fn new(max: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max)),
            refused: Arc::default(),
            logged: Arc::new(watchpost_contracts::throttle::Every::new(
                Duration::from_secs(10),
            )),
        }
    }
}

/// A stream that gives its permit back when it is dropped.
pub struct Limited {
    stream: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl<S: Send + 'static> Accept<TcpStream, S> for LimitAcceptor {
    type Stream = Limited;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Limited, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        std::future::ready(match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Ok((
                Limited {
                    stream,
                    _permit: permit,
                },
                service,
            )),
            Err(_) => {
                let total = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
                if self.logged.due() {
                    tracing::warn!(
                        max = MAX_CONNECTIONS,
                        refused_total = total,
                        "web: connection refused, too many open"
                    );
                }
                Err(io::Error::other("too many connections"))
            }
        })
    }
}

impl AsyncRead for Limited {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Limited {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
