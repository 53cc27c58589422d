//! Schedule windows such as `"Mon-Fri 07:00-19:00"`, `"Sat,Sun 08:00-12:00"`, `"22:00-06:00"`.
//!
//! Written by hand: the format is the contract's own, and the cron crates express "from 07:00
//! to 19:00" only as a set of firing instants, not as an interval to test a time against.

use serde::{Deserialize, Serialize};

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// One `schedule` entry as written, parsed once when the file is read. Deserialising never
/// fails here, so that a bad window is reported with every other problem of the file (by
/// `validate`), not as the first and only serde error; the rule engine reads `window`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(from = "String", into = "String")]
pub struct ScheduleWindow {
    pub text: String,
    pub window: Result<Window, String>,
}

impl From<String> for ScheduleWindow {
    fn from(text: String) -> Self {
        let window = Window::parse(&text);
        Self { text, window }
    }
}

impl From<ScheduleWindow> for String {
    fn from(w: ScheduleWindow) -> String {
        w.text
    }
}

/// Days of the week (Monday = 0) and a time range in minutes; a range whose end is before
/// its start runs over midnight into the next day.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub(crate) days: [bool; 7],
    pub(crate) start: u32,
    pub(crate) end: u32,
}

impl Window {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.split_whitespace();
        let (days_part, time_part) = match (parts.next(), parts.next(), parts.next()) {
            (Some(t), None, None) => (None, t),
            (Some(d), Some(t), None) => (Some(d), t),
            _ => {
                return Err(format!(
                    "expected \"[DAYS] HH:MM-HH:MM\", e.g. \"Mon-Fri 07:00-19:00\", got \"{text}\""
                ))
            }
        };
        let days = match days_part {
            None => [true; 7],
            Some(d) => parse_days(d)?,
        };
        let (a, b) = time_part
            .split_once('-')
            .ok_or_else(|| format!("expected a time range HH:MM-HH:MM, got \"{time_part}\""))?;
        let (start, end) = (parse_time(a)?, parse_time(b)?);
        if start == end {
            return Err(format!("the window \"{time_part}\" is empty"));
        }
        Ok(Self { days, start, end })
    }
}

fn day_index(name: &str) -> Result<usize, String> {
    let lower = name.to_ascii_lowercase();
    DAYS.iter()
        .position(|d| lower.len() >= 3 && d.starts_with(&lower[..3]) && is_day_name(&lower))
        .ok_or_else(|| format!("unknown day \"{name}\" (use Mon, Tue, Wed, Thu, Fri, Sat, Sun)"))
}

fn is_day_name(lower: &str) -> bool {
    const FULL: [&str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    DAYS.contains(&lower) || FULL.contains(&lower)
}

fn parse_days(spec: &str) -> Result<[bool; 7], String> {
    let mut days = [false; 7];
    for item in spec.split(',') {
        match item.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (day_index(a)?, day_index(b)?);
                let mut d = a;
                loop {
                    days[d] = true;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => days[day_index(item)?] = true,
        }
    }
    Ok(days)
}

pub(crate) fn parse_time(s: &str) -> Result<u32, String> {
    let bad = || format!("expected HH:MM (00:00 to 24:00), got \"{s}\"");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

/// A time of day such as `"03:00"` (the daily occupancy reset), parsed once like a window;
/// minutes after midnight, local time.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(from = "String", into = "String")]
pub struct TimeOfDay {
    pub text: String,
    pub minutes: Result<u32, String>,
}

impl From<String> for TimeOfDay {
    fn from(text: String) -> Self {
        let minutes = parse_time(&text).and_then(|m| {
            if m == 24 * 60 {
                Err(format!("expected HH:MM (00:00 to 23:59), got \"{text}\""))
            } else {
                Ok(m)
            }
        });
        Self { text, minutes }
    }
}

impl From<TimeOfDay> for String {
    fn from(t: TimeOfDay) -> String {
        t.text
    }
}
