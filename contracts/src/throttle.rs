//! "At most once per period" for log lines a flood would otherwise repeat (dropped alerts,
//! refused connections, busy commands): the event is still counted every time by its caller,
//! only the line is throttled. A leaf: uses no room.

use parking_lot::Mutex;
use std::time::{Duration, Instant};

pub struct Every {
    period: Duration,
    last: Mutex<Option<Instant>>,
}

impl Every {
    pub fn new(period: Duration) -> Self {
        Self {
            period,
            last: Mutex::new(None),
        }
    }

    /// True the first time and then once the period has passed since the last true.
    pub fn due(&self) -> bool {
        let mut last = self.last.lock();
        if last.is_some_and(|t| t.elapsed() < self.period) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_then_quiet_until_the_period_passes() {
        let e = Every::new(Duration::from_millis(50));
        assert!(e.due());
        assert!(!e.due());
        std::thread::sleep(Duration::from_millis(60));
        assert!(e.due());
    }
}
