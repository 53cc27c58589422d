//! `/metrics` (Prometheus text): gateways by state — the figure a fleet operator's own
//! Prometheus alerts on — alerts by site, ingest lag, database write latency.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

pub struct Metrics {
    registry: Registry,
    gateways: IntGaugeVec,
    alerts: IntCounterVec,
    ingested: IntCounterVec,
    rejected: IntCounter,
    duplicates: IntCounter,
    lag: Histogram,
    write: Histogram,
    database_up: IntGauge,
    broker_up: IntGauge,
}

const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let gateways = IntGaugeVec::new(
            Opts::new(
                "watchpost_console_gateways",
                "Gateways by state: online, stale (no health for 3 intervals) or offline",
            ),
            &["state"],
        )?;
        let alerts = IntCounterVec::new(
            Opts::new(
                "watchpost_console_alerts_total",
                "Alerts stored (each once, however often delivered), by site",
            ),
            &["site"],
        )?;
        let ingested = IntCounterVec::new(
            Opts::new(
                "watchpost_console_ingest_messages_total",
                "MQTT messages filed, by kind",
            ),
            &["kind"],
        )?;
        let rejected = IntCounter::new(
            "watchpost_console_ingest_rejected_total",
            "MQTT messages not in the contract's shape (acknowledged, not filed)",
        )?;
        let duplicates = IntCounter::new(
            "watchpost_console_alert_duplicates_total",
            "Alerts delivered again (a gateway's retry, a redelivery) and not stored twice",
        )?;
        let lag = Histogram::with_opts(
            HistogramOpts::new(
                "watchpost_console_ingest_lag_seconds",
                "From the event on the gateway (its timestamp) to its row committed",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let write = Histogram::with_opts(
            HistogramOpts::new(
                "watchpost_console_database_write_seconds",
                "One ingest batch's transaction",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let database_up = IntGauge::new(
            "watchpost_console_database_up",
            "1 when the last database write worked",
        )?;
        let broker_up = IntGauge::new(
            "watchpost_console_broker_up",
            "1 while the MQTT session is connected",
        )?;
        for c in [
            Box::new(gateways.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(alerts.clone()),
            Box::new(ingested.clone()),
            Box::new(rejected.clone()),
            Box::new(duplicates.clone()),
            Box::new(lag.clone()),
            Box::new(write.clone()),
            Box::new(database_up.clone()),
            Box::new(broker_up.clone()),
        ] {
            registry.register(c)?;
        }
        database_up.set(1);
        for s in crate::fleet::State::ALL {
            gateways.with_label_values(&[s.as_str()]).set(0);
        }
        Ok(Self {
            registry,
            gateways,
            alerts,
            ingested,
            rejected,
            duplicates,
            lag,
            write,
            database_up,
            broker_up,
        })
    }

    pub fn ingested(&self, kind: &str) {
        self.ingested.with_label_values(&[kind]).inc();
    }
    pub fn rejected(&self) {
        self.rejected.inc();
    }
    pub fn duplicates(&self, n: u64) {
        self.duplicates.inc_by(n);
    }
    pub fn alert(&self, site: &str) {
        self.alerts.with_label_values(&[site]).inc();
    }
    pub fn lag_seconds(&self, s: f64) {
        self.lag.observe(s);
    }
    pub fn write_seconds(&self, s: f64) {
        self.write.observe(s);
    }
    pub fn database_ok(&self, ok: bool) {
        self.database_up.set(i64::from(ok));
    }
    pub fn database_is_up(&self) -> bool {
        self.database_up.get() == 1
    }

    /// The text exposition, with the gateway counts and the broker state as of now.
    pub fn render(
        &self,
        by_state: &[(crate::fleet::State, i64)],
        broker_up: bool,
    ) -> Result<String, prometheus::Error> {
        for (s, n) in by_state {
            self.gateways.with_label_values(&[s.as_str()]).set(*n);
        }
        self.broker_up.set(i64::from(broker_up));
        let mut out = Vec::new();
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(String::from_utf8_lossy(&out).into_owned())
    }
}
