//! Lines: crossings counted per line and label, occupancy (in − out), the daily reset and
//! the periodic `count.report`.
//!
//! The counts are shared ([`SharedCounts`]): the engine adds crossings, the page and the
//! MQTT command reset them, telemetry reads them, and the committer writes them into the
//! outbox in the same transaction as the alerts of the same burst, so they survive a restart
//! exactly as far as the alerts do.

use crate::config::{InSide, LineConfig};
use crate::geometry::Side;
use chrono::{DateTime, Duration, Local, TimeZone, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
pub use watchpost_contracts::event::LabelCount;
pub use watchpost_contracts::health::LineHealth;

/// Which way a track crossed, in the line's own terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossing {
    In,
    Out,
}

impl Crossing {
    pub fn as_str(self) -> &'static str {
        match self {
            Crossing::In => "in",
            Crossing::Out => "out",
        }
    }

    /// The direction of a track that came from `from`, for a line whose `in` is `in_side`.
    pub fn from_side(from: Side, in_side: InSide) -> Self {
        match (from, in_side) {
            (Side::Left, InSide::LeftToRight) | (Side::Right, InSide::RightToLeft) => Crossing::In,
            _ => Crossing::Out,
        }
    }
}

/// One label's tallies on one line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    pub total_in: u64,
    pub total_out: u64,
    pub interval_in: u64,
    pub interval_out: u64,
    /// In − out since the reset; an "out" at zero stays at zero (someone who entered
    /// before the reset, or was missed on the way in).
    pub occupancy: u64,
}

/// One hour's crossings on a line (every label), for the page's chart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Hour {
    /// Start of the hour, Unix seconds.
    pub start: i64,
    #[serde(rename = "in")]
    pub entered: u64,
    pub out: u64,
}

/// Hours of history kept per line (today and yesterday, whatever the time zone).
const HOURS_KEPT: usize = 48;

/// Everything counted on one line; persisted as JSON in the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LineCounts {
    pub line: String,
    /// The last reset.
    pub since: DateTime<Utc>,
    /// The start of the interval the next `count.report` covers.
    pub interval_start: DateTime<Utc>,
    pub labels: BTreeMap<String, Tally>,
    #[serde(default)]
    pub hours: VecDeque<Hour>,
}

impl LineCounts {
    pub fn new(line: &str, now: DateTime<Utc>, period: Duration) -> Self {
        Self {
            line: line.to_string(),
            since: now,
            interval_start: interval_floor(now, period),
            labels: BTreeMap::new(),
            hours: VecDeque::new(),
        }
    }

    pub fn add(&mut self, label: &str, dir: Crossing, at: DateTime<Utc>) {
        let t = self.labels.entry(label.to_string()).or_default();
        match dir {
            Crossing::In => {
                t.total_in += 1;
                t.interval_in += 1;
                t.occupancy += 1;
            }
            Crossing::Out => {
                t.total_out += 1;
                t.interval_out += 1;
                t.occupancy = t.occupancy.saturating_sub(1);
            }
        }
        let start = at.timestamp() - at.timestamp().rem_euclid(3600);
        if self.hours.back().is_none_or(|h| h.start != start) {
            self.hours.push_back(Hour {
                start,
                ..Hour::default()
            });
            while self.hours.len() > HOURS_KEPT {
                self.hours.pop_front();
            }
        }
        if let Some(h) = self.hours.back_mut() {
            match dir {
                Crossing::In => h.entered += 1,
                Crossing::Out => h.out += 1,
            }
        }
    }

    /// Totals and occupancy back to zero (the interval's figures and the hours stay: they
    /// are history, not state).
    pub fn reset(&mut self, now: DateTime<Utc>) {
        for t in self.labels.values_mut() {
            t.total_in = 0;
            t.total_out = 0;
            t.occupancy = 0;
        }
        self.since = now;
    }

    /// Occupancy of these labels (empty: every label).
    pub fn occupancy(&self, labels: &[String]) -> u64 {
        self.labels
            .iter()
            .filter(|(l, _)| labels.is_empty() || labels.contains(l))
            .map(|(_, t)| t.occupancy)
            .sum()
    }

    pub fn health(&self) -> LineHealth {
        LineHealth {
            name: self.line.clone(),
            entered: self.labels.values().map(|t| t.total_in).sum(),
            out: self.labels.values().map(|t| t.total_out).sum(),
            occupancy: self.occupancy(&[]),
            since: crate::clock::rfc3339_ms(self.since),
            labels: self
                .labels
                .iter()
                .map(|(l, t)| {
                    (
                        l.clone(),
                        LabelCount {
                            entered: t.total_in,
                            out: t.total_out,
                            occupancy: t.occupancy,
                        },
                    )
                })
                .collect(),
        }
    }
}

/// The start of the report interval holding `t`: intervals are aligned to multiples of the
/// period since the Unix epoch, so 15-minute reports close at :00, :15, :30 and :45.
pub fn interval_floor(t: DateTime<Utc>, period: Duration) -> DateTime<Utc> {
    let p = period.num_milliseconds().max(1);
    let ms = t.timestamp_millis();
    DateTime::from_timestamp_millis(ms - ms.rem_euclid(p)).unwrap_or(t)
}

/// The most recent daily reset instant at or before `now` (`minutes` after local midnight).
pub fn last_reset_at(now: DateTime<Utc>, minutes: u32) -> Option<DateTime<Utc>> {
    let local = now.with_timezone(&Local);
    let at = |date: chrono::NaiveDate| {
        let naive = date.and_hms_opt(minutes / 60, minutes % 60, 0)?;
        // A reset inside a daylight-saving gap happens at the gap's end; ambiguous: the first.
        Local
            .from_local_datetime(&naive)
            .earliest()
            .or_else(|| {
                Local
                    .from_local_datetime(&(naive + Duration::hours(1)))
                    .earliest()
            })
            .map(|t| t.with_timezone(&Utc))
    };
    let today = at(local.date_naive())?;
    if today <= now {
        Some(today)
    } else {
        at(local.date_naive().pred_opt()?)
    }
}

/// Every line's counts, shared by the engine, the committer, telemetry and the control doors.
#[derive(Debug, Clone, Default)]
pub struct SharedCounts(Arc<Mutex<Board>>);

#[derive(Debug, Default)]
struct Board {
    lines: BTreeMap<String, LineCounts>,
    /// Changed since the committer last took a copy.
    dirty: bool,
    /// Crossings since the daemon started, by (line, label, direction): never reset, for
    /// Prometheus counters.
    since_start: BTreeMap<(String, String, &'static str), u64>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CountsError {
    #[error("no line named \"{0}\"")]
    NoLine(String),
}

impl SharedCounts {
    /// Counts read back from the outbox at start (rows that do not parse are skipped with a
    /// warning: a count is worth less than starting).
    pub fn restore(saved: impl IntoIterator<Item = (String, String)>) -> Self {
        let counts = Self::default();
        {
            let mut b = counts.0.lock();
            for (line, json) in saved {
                match serde_json::from_str::<LineCounts>(&json) {
                    Ok(c) => {
                        b.lines.insert(line, c);
                    }
                    Err(e) => {
                        tracing::warn!(line = %line, error = %e, "saved line counts unreadable; the line starts from zero")
                    }
                }
            }
        }
        counts
    }

    /// Runs `f` on the board's lines; marks them changed when `f` says so.
    pub(super) fn with<R>(
        &self,
        f: impl FnOnce(&mut BTreeMap<String, LineCounts>) -> (R, bool),
    ) -> R {
        let mut b = self.0.lock();
        let (r, changed) = f(&mut b.lines);
        b.dirty |= changed;
        r
    }

    /// Adds one crossing of `line` (created with `period` if new).
    pub(super) fn add(
        &self,
        line: &str,
        period: Duration,
        label: &str,
        dir: Crossing,
        now: DateTime<Utc>,
    ) {
        let mut b = self.0.lock();
        b.lines
            .entry(line.to_string())
            .or_insert_with(|| LineCounts::new(line, now, period))
            .add(label, dir, now);
        *b.since_start
            .entry((line.to_string(), label.to_string(), dir.as_str()))
            .or_default() += 1;
        b.dirty = true;
    }

    /// Crossings since the daemon started: ((line, label, direction), count).
    pub fn since_start(&self) -> Vec<((String, String, &'static str), u64)> {
        self.0
            .lock()
            .since_start
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// A copy of every line's counts when something changed since the last call (for the
    /// committer).
    pub fn take_changed(&self) -> Option<Vec<LineCounts>> {
        let mut b = self.0.lock();
        if !b.dirty {
            return None;
        }
        b.dirty = false;
        Some(b.lines.values().cloned().collect())
    }

    /// Marks the counts changed again (a commit of them failed and will be retried).
    pub fn mark_changed(&self) {
        self.0.lock().dirty = true;
    }

    /// Resets one line (or every line): totals and occupancy to zero, now.
    pub fn reset(
        &self,
        line: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, CountsError> {
        self.with(|lines| {
            let names: Vec<String> = match line {
                Some(name) if !lines.contains_key(name) => {
                    return (Err(CountsError::NoLine(name.to_string())), false)
                }
                Some(name) => vec![name.to_string()],
                None => lines.keys().cloned().collect(),
            };
            for n in &names {
                if let Some(c) = lines.get_mut(n) {
                    c.reset(now);
                }
            }
            (Ok(names), true)
        })
    }

    /// The occupancy of `line` for these labels (empty: every label); 0 for a line not counted
    /// yet. Reads in place, without copying the board.
    pub fn occupancy(&self, line: &str, labels: &[String]) -> u64 {
        self.0
            .lock()
            .lines
            .get(line)
            .map_or(0, |c| c.occupancy(labels))
    }

    /// A copy of one line's counts, or of all (for the page, the API, health, metrics).
    pub fn snapshot(&self) -> Vec<LineCounts> {
        self.0.lock().lines.values().cloned().collect()
    }

    /// Drops lines that are no longer configured, adds new ones (after a config change).
    pub(super) fn keep_only(
        &self,
        configured: &[LineConfig],
        now: DateTime<Utc>,
        period: impl Fn(&LineConfig) -> Duration,
    ) {
        self.with(|lines| {
            let before = lines.len();
            lines.retain(|name, _| configured.iter().any(|l| &l.name == name));
            let mut changed = lines.len() != before;
            for l in configured {
                if !lines.contains_key(&l.name) {
                    lines.insert(l.name.clone(), LineCounts::new(&l.name, now, period(l)));
                    changed = true;
                }
            }
            ((), changed)
        })
    }
}
