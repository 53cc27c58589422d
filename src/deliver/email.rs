//! The email sink: SMTP with STARTTLS (`smtp://`, required, never plain) or implicit TLS
//! (`smtps://`), through lettre on rustls. A short text naming camera, rule and zone, the
//! snapshot JPEG attached when there is one. SMTP 4xx = retry, 5xx = rejected.

use super::{DeliverError, Outcome};
use crate::config::SinkConfig;
use crate::evidence::SnapshotStore;
use crate::outbox::OutboxRow;
use crate::template::AlertView;
use base64::Engine as _;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::sync::Arc;
use std::time::Duration;

pub struct EmailSink {
    name: String,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
    template: Option<String>,
    link_url: Option<String>,
    snapshots: Option<Arc<SnapshotStore>>,
}

impl EmailSink {
    pub fn from_config(cfg: &SinkConfig) -> Result<Self, DeliverError> {
        let setup = |message: String| DeliverError::Setup {
            sink: cfg.name.clone(),
            message,
        };
        let url = url::Url::parse(&cfg.url).map_err(|e| setup(format!("url: {e}")))?;
        let host = url
            .host_str()
            .ok_or_else(|| setup("url has no host".into()))?
            .to_string();
        let implicit = match url.scheme() {
            "smtps" => true,
            "smtp" => false,
            other => {
                return Err(setup(format!(
                    "scheme \"{other}\": use smtp:// or smtps://"
                )))
            }
        };
        let mut tls = TlsParameters::builder(host.clone());
        if let Some(ca) = &cfg.ca_file {
            let pem =
                std::fs::read(ca).map_err(|e| setup(format!("ca_file {}: {e}", ca.display())))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| setup(format!("ca_file {}: {e}", ca.display())))?;
            tls = tls.add_root_certificate(cert);
        }
        let tls = tls.build_rustls().map_err(|e| setup(format!("TLS: {e}")))?;
        let port = url.port().unwrap_or(if implicit { 465 } else { 587 });
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(port)
            .tls(if implicit {
                Tls::Wrapper(tls)
            } else {
                Tls::Required(tls)
            })
            .timeout(Some(Duration::from_secs_f64(cfg.timeout_seconds)));
        if let Some(user) = &cfg.username {
            let pass = cfg
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), pass));
        }
        let mailbox = |s: &str| {
            s.parse::<Mailbox>()
                .map_err(|e| setup(format!("\"{s}\" is not an email address: {e}")))
        };
        Ok(Self {
            name: cfg.name.clone(),
            transport: builder.build(),
            from: mailbox(cfg.from.as_deref().unwrap_or_default())?,
            to: cfg
                .to
                .iter()
                .map(|t| mailbox(t))
                .collect::<Result<_, _>>()?,
            template: cfg.template.clone(),
            link_url: cfg.link_url.clone(),
            snapshots: None,
        })
    }

    /// Where `data.snapshot` references are read from, for the attachment.
    pub fn with_snapshots(mut self, store: Arc<SnapshotStore>) -> Self {
        self.snapshots = Some(store);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn snapshot(&self, view: &AlertView) -> Option<Vec<u8>> {
        if let Some(b64) = &view.snapshot_jpeg {
            return base64::engine::general_purpose::STANDARD.decode(b64).ok();
        }
        self.snapshots
            .as_ref()?
            .read(view.snapshot.as_deref()?)
            .ok()
    }

    pub fn message(&self, view: &AlertView) -> Result<Message, String> {
        if let Some(r) = &view.report {
            let text = format!(
                "{}\n\nLine:       {}\nInterval:   {} to {}\nIn:         {}\nOut:        {}\nInside:     {}\nSince reset: {} in, {} out\n\nGateway {} at {}; report {}\n",
                view.title(None), r.line, r.interval_start, r.interval_end, r.entered, r.out,
                r.occupancy, r.total_in, r.total_out, view.device, view.site, view.alert_id
            );
            let mut builder = Message::builder()
                .from(self.from.clone())
                .subject(view.title(None))
                .message_id(Some(format!("<{}@watchpost>", view.alert_id)))
                .date(view.at.into());
            for to in &self.to {
                builder = builder.to(to.clone());
            }
            return builder
                .singlepart(SinglePart::plain(text))
                .map_err(|e| format!("cannot build the message: {e}"));
        }
        let mut text = format!(
            "{}\n\nCamera:     {}\nRule:       {}\nZone:       {}\nSeverity:   {}\nTime:       {}\n",
            view.title(self.template.as_deref()),
            view.camera,
            view.rule,
            if view.zone().is_empty() { "-".to_string() } else { view.zone() },
            view.severity,
            view.local_time(),
        );
        if view.ended() {
            text.push_str(&format!(
                "Lasted:     {:.0} s\n",
                view.duration_seconds.unwrap_or_default()
            ));
        } else {
            text.push_str(&format!(
                "Detected:   {} ({:.0}%), {} object(s)\n",
                view.label,
                view.confidence.unwrap_or_default() * 100.0,
                view.count.unwrap_or(1)
            ));
        }
        if let (Some(base), Some(id)) = (&self.link_url, &view.snapshot) {
            text.push_str(&format!(
                "Snapshot:   {}/snapshots/{id}.jpg\n",
                base.trim_end_matches('/')
            ));
        }
        text.push_str(&format!(
            "\nGateway {} at {}; alert {}\n",
            view.device, view.site, view.alert_id
        ));
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(view.title(self.template.as_deref()))
            // Stable across retries, so a mail client can fold a duplicate.
            .message_id(Some(format!("<{}@watchpost>", view.alert_id)))
            .date(view.at.into());
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        let built = match self.snapshot(view) {
            Some(jpeg) => {
                let jpeg_type =
                    ContentType::parse("image/jpeg").map_err(|e| format!("content type: {e}"))?;
                builder.multipart(
                    MultiPart::mixed()
                        .singlepart(SinglePart::plain(text))
                        .singlepart(
                            Attachment::new(format!("snapshot-{}.jpg", view.alert_id))
                                .body(jpeg, jpeg_type),
                        ),
                )
            }
            None => builder.singlepart(SinglePart::plain(text)),
        };
        built.map_err(|e| format!("cannot build the message: {e}"))
    }

    pub async fn send(&self, row: &OutboxRow) -> Outcome {
        let message = match AlertView::parse(&row.body).and_then(|v| self.message(&v)) {
            Ok(m) => m,
            Err(error) => return Outcome::Rejected { status: 0, error },
        };
        match self.transport.send(message).await {
            Ok(r) => Outcome::Delivered {
                status: u16::from(r.code()),
            },
            Err(e) => {
                let status = e.status().map(u16::from);
                let error = format!("SMTP: {e}");
                if e.is_permanent() {
                    Outcome::Rejected {
                        status: status.unwrap_or(0),
                        error,
                    }
                } else {
                    // 4xx, connection and TLS trouble: the server may take it later.
                    Outcome::Retry {
                        after: None,
                        status,
                        error,
                    }
                }
            }
        }
    }
}
