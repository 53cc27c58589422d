//! When a schedule window is open: the test against local time. The window's grammar and
//! parsing belong to the config (`config::Window`); this is its behaviour in the rules.

use crate::config::Window;
use chrono::{Datelike, NaiveDateTime, Timelike};

impl Window {
    pub fn contains(&self, t: NaiveDateTime) -> bool {
        let day = t.weekday().num_days_from_monday() as usize;
        let min = t.hour() * 60 + t.minute();
        if self.start < self.end {
            self.days[day] && (self.start..self.end).contains(&min)
        } else {
            // Over midnight: the evening part belongs to `day`, the morning part to the day before.
            (self.days[day] && min >= self.start) || (self.days[(day + 6) % 7] && min < self.end)
        }
    }
}
