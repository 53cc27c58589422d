//! The webhook sink: POST the committed body, signed for this attempt.

use super::{DeliverError, Outcome, Signer};
use crate::config::{SignatureMode, SinkConfig};
use crate::outbox::OutboxRow;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use std::time::Duration;

pub struct WebhookSink {
    name: String,
    url: reqwest::Url,
    client: reqwest::Client,
    signer: Signer,
}

impl WebhookSink {
    pub fn from_config(cfg: &SinkConfig) -> Result<Self, DeliverError> {
        let setup = |message: String| DeliverError::Setup {
            sink: cfg.name.clone(),
            message,
        };
        let secret = cfg
            .secret
            .as_ref()
            .ok_or_else(|| setup("no secret to sign with".into()))?;
        let signer = match cfg.signature {
            SignatureMode::StandardWebhooks => {
                Signer::standard_webhooks(secret.expose()).map_err(|e| setup(e.to_string()))?
            }
            SignatureMode::Hex => Signer::hex(
                secret.expose(),
                cfg.signature_header.as_deref().unwrap_or("X-Signature"),
            ),
        };
        let url = reqwest::Url::parse(&cfg.url).map_err(|e| setup(format!("url: {e}")))?;
        let client = http_client(cfg.timeout_seconds).map_err(|e| setup(e.to_string()))?;
        Ok(Self {
            name: cfg.name.clone(),
            url,
            client,
            signer,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub async fn send(&self, row: &OutboxRow, unix_ts: i64) -> Outcome {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (k, v) in self.signer.headers(&row.alert_id, unix_ts, &row.body) {
            if let (Ok(k), Ok(v)) = (
                HeaderName::from_bytes(k.as_bytes()),
                HeaderValue::from_str(&v),
            ) {
                headers.insert(k, v);
            }
        }
        post(&self.client, &self.url, headers, row.body.clone()).await
    }
}

/// The client every HTTP sink uses: total and connect timeouts, no redirects.
pub(crate) fn http_client(timeout_seconds: f64) -> Result<reqwest::Client, reqwest::Error> {
    let timeout = Duration::from_secs_f64(timeout_seconds);
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        // A redirect would re-send an alert somewhere nobody configured.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("watchpost/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// POSTs `body` and classifies the answer.
pub(crate) async fn post(
    client: &reqwest::Client,
    url: &reqwest::Url,
    headers: HeaderMap,
    body: Vec<u8>,
) -> Outcome {
    let resp = client
        .post(url.clone())
        .headers(headers)
        .body(body)
        .send()
        .await;
    match resp {
        // Errors carry the URL, which may hold a token: strip it before it reaches a log.
        Err(e) => Outcome::Retry {
            after: None,
            status: None,
            error: describe(&e.without_url()),
        },
        Ok(r) => classify(r.status(), r.headers()),
    }
}

/// A JSON POST (Slack, PagerDuty).
pub(crate) async fn post_json(
    client: &reqwest::Client,
    url: &reqwest::Url,
    body: Vec<u8>,
) -> Outcome {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    post(client, url, headers, body).await
}

fn describe(e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    msg
}

/// 2xx delivered; 408/425/429/5xx retry (honouring Retry-After); any other answer rejected.
pub(crate) fn classify(status: reqwest::StatusCode, headers: &HeaderMap) -> Outcome {
    let code = status.as_u16();
    if status.is_success() {
        return Outcome::Delivered { status: code };
    }
    let error = format!("HTTP {status}");
    if matches!(code, 408 | 425 | 429) || status.is_server_error() {
        let after = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        return Outcome::Retry {
            after,
            status: Some(code),
            error,
        };
    }
    Outcome::Rejected {
        status: code,
        error,
    }
}
