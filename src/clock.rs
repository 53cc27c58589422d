//! Wall time behind a trait: rules, cooldowns and retry schedules read the time from here,
//! so tests move a fake clock instead of sleeping.

use chrono::{DateTime, Utc};

#[cfg(any(test, feature = "test-helpers"))]
pub use fake::FakeClock;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Milliseconds since the Unix epoch, the unit the outbox stores.
pub fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// RFC 3339 with milliseconds and `Z`, as the payload contract writes timestamps.
pub fn rfc3339_ms(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(any(test, feature = "test-helpers"))]
mod fake {
    use super::Clock;
    use chrono::{DateTime, Utc};
    use parking_lot::Mutex;
    use std::sync::Arc;
    use std::time::Duration;

    /// A clock that only moves when told to (tests only).
    #[derive(Debug, Clone)]
    pub struct FakeClock(Arc<Mutex<DateTime<Utc>>>);

    impl FakeClock {
        pub fn new(start: DateTime<Utc>) -> Self {
            Self(Arc::new(Mutex::new(start)))
        }

        pub fn advance(&self, by: Duration) {
            let mut t = self.0.lock();
            *t += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
        }

        pub fn set(&self, to: DateTime<Utc>) {
            *self.0.lock() = to;
        }
    }

    impl Clock for FakeClock {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock()
        }
    }
}
