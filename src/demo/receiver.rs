//! A webhook receiver on loopback that verifies Standard Webhooks signatures, records every
//! request, and answers with a status that can be switched while it runs (the demo's
//! "ops backend", and the tests' receiver).

use crate::deliver::verify_standard;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub at: DateTime<Utc>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Signature valid (when the receiver knows the key), and timestamp within 5 minutes.
    pub verified: Option<bool>,
    /// The status this receiver answered with.
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Answer {
    Status(u16),
    /// A status with a `Retry-After: seconds` header (429, 503).
    RetryAfter(u16, u64),
    /// Never answer (until the client times out).
    Hang,
}

type Callback = Arc<dyn Fn(&Received) + Send + Sync>;

struct Inner {
    key: Option<Vec<u8>>,
    answer: Mutex<Answer>,
    /// Answers used first, one per request, before `answer`.
    script: Mutex<std::collections::VecDeque<Answer>>,
    log: Mutex<Vec<Received>>,
    on_receive: Option<Callback>,
}

pub struct Receiver {
    addr: SocketAddr,
    inner: Arc<Inner>,
    stop: CancellationToken,
}

impl Receiver {
    /// Listens on 127.0.0.1:`port` (0 = ephemeral). `key` is the decoded whsec_ key to verify with.
    pub async fn start(
        port: u16,
        key: Option<Vec<u8>>,
        on_receive: Option<Callback>,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let inner = Arc::new(Inner {
            key,
            answer: Mutex::new(Answer::Status(200)),
            script: Mutex::new(Default::default()),
            log: Mutex::new(Vec::new()),
            on_receive,
        });
        let app = axum::Router::new()
            .route("/", post(handle))
            .route("/{*path}", post(handle))
            .with_state(inner.clone());
        let stop = CancellationToken::new();
        let s = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(s.cancelled_owned())
                .await;
        });
        Ok(Self { addr, inner, stop })
    }

    pub fn url(&self) -> String {
        format!("http://{}/hooks/watchpost", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    #[cfg(feature = "test-helpers")]
    pub fn set_answer(&self, a: Answer) {
        *self.inner.answer.lock() = a;
    }

    /// The next requests get these answers, in order; then `set_answer`'s.
    #[cfg(feature = "test-helpers")]
    pub fn script(&self, answers: &[Answer]) {
        self.inner.script.lock().extend(answers.iter().copied());
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.inner.log.lock().clone()
    }

    /// Stops listening (the port closes, as a receiver outage).
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The header under which [`Received::headers`] records the request's path.
pub const PATH_HEADER: &str = "x-received-path";

async fn handle(
    State(inner): State<Arc<Inner>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap) {
    let scripted = inner.script.lock().pop_front();
    let answer = scripted.unwrap_or_else(|| *inner.answer.lock());
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    let verified = inner.key.as_ref().map(|key| {
        let (Some(id), Some(ts), Some(sig)) = (
            get("webhook-id"),
            get("webhook-timestamp"),
            get("webhook-signature"),
        ) else {
            return false;
        };
        let Ok(ts) = ts.parse::<i64>() else {
            return false;
        };
        let fresh = (Utc::now().timestamp() - ts).abs() <= 300;
        fresh && verify_standard(key, id, ts, &body, sig)
    });
    let mut reply = HeaderMap::new();
    let status = match (answer, verified) {
        (_, Some(false)) => 401,
        (Answer::Status(s), _) => s,
        (Answer::RetryAfter(s, secs), _) => {
            reply.insert(axum::http::header::RETRY_AFTER, secs.into());
            s
        }
        (Answer::Hang, _) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            504
        }
    };
    let rec = Received {
        at: Utc::now(),
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
            .chain([(PATH_HEADER.to_string(), uri.path().to_string())])
            .collect(),
        body: body.to_vec(),
        verified,
        status,
    };
    if let Some(cb) = &inner.on_receive {
        cb(&rec);
    }
    inner.log.lock().push(rec);
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        reply,
    )
}
