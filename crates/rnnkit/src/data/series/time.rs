//! Timestamps: a small parser for the formats time-series CSVs use, the regular step of a
//! series, and the gaps in it.
//!
//! Timestamps are seconds since 1970-01-01 00:00:00 (no time zone: the text is taken as it
//! reads). Accepted forms:
//!
//! | text                   | meaning                     | example file      |
//! |------------------------|-----------------------------|-------------------|
//! | `YYYYMMDD`             | a day                       | co2 (weekly)      |
//! | `YYYY-MM-DD`           | a day                       | airline passengers|
//! | `YYYY-MM-DD HH:MM[:SS]`| a time (`T` works too)      | ETTh1 (hourly)    |
//! | `YYYY-MM`              | the first day of a month    |                   |
//! | `YYYY`, `YYYY.0`       | January 1 of a year         | sunspots (yearly) |
//!
//! Written here rather than taken from a date crate: these few forms cover the files we read,
//! and a dependency for them would cost more than the fifty lines below.

/// Seconds in a day.
const DAY: i64 = 86_400;

/// The formats [`parse_timestamp`] accepts, for error messages.
pub const TIMESTAMP_FORMATS: &str =
    "YYYYMMDD, YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS], YYYY-MM, or a year (1700 or 1700.0)";

/// Parses a timestamp to seconds since 1970-01-01 00:00:00; `None` when the text is none of
/// the accepted forms (see the module docs) or names no real date (February 30).
///
/// ```
/// use rnnkit::data::series::parse_timestamp;
/// assert_eq!(parse_timestamp("19700102"), Some(86_400));
/// assert_eq!(parse_timestamp("1970-01-01 01:00:00"), Some(3_600));
/// assert_eq!(parse_timestamp("1700.0"), parse_timestamp("1700-01-01"));
/// assert_eq!(parse_timestamp("2021-02-30"), None);
/// ```
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let s = text.trim();
    let b = s.as_bytes();
    let all_digits = |t: &[u8]| !t.is_empty() && t.iter().all(u8::is_ascii_digit);
    // A plain year, possibly written as a float with a zero fraction ("1700.0").
    let (int_part, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    if (1..=4).contains(&int_part.len()) && all_digits(int_part.as_bytes()) {
        if let Some(f) = frac
            && !f.bytes().all(|c| c == b'0')
        {
            return None;
        }
        return to_seconds(int_part.parse().ok()?, 1, 1, 0, 0, 0);
    }
    if frac.is_some() && !s.contains(':') {
        return None;
    }
    if b.len() == 8 && all_digits(b) {
        let num = |r: std::ops::Range<usize>| s[r].parse::<u32>().ok();
        return to_seconds(num(0..4)? as i64, num(4..6)?, num(6..8)?, 0, 0, 0);
    }
    let (date, time) = match s.find([' ', 'T']) {
        Some(i) => (&s[..i], Some(s[i + 1..].trim_start())),
        None => (s, None),
    };
    let parts: Vec<&str> = date.split('-').collect();
    let field = |p: &str, len: usize| -> Option<u32> {
        (p.len() == len && all_digits(p.as_bytes())).then(|| p.parse().ok())?
    };
    let (y, m, d) = match parts.as_slice() {
        [y, m] if time.is_none() => (field(y, 4)?, field(m, 2)?, 1),
        [y, m, d] => (field(y, 4)?, field(m, 2)?, field(d, 2)?),
        _ => return None,
    };
    let (hh, mm, ss) = match time {
        None => (0, 0, 0),
        Some(t) => {
            let tp: Vec<&str> = t.split(':').collect();
            match tp.as_slice() {
                [h, m] => (field(h, 2)?, field(m, 2)?, 0),
                [h, m, sec] => {
                    // Fractional seconds ("00:00:00.000") are accepted and dropped.
                    let whole = sec.split('.').next()?;
                    (field(h, 2)?, field(m, 2)?, field(whole, 2)?)
                }
                _ => return None,
            }
        }
    };
    to_seconds(y as i64, m, d, hh, mm, ss)
}

/// Seconds since the epoch for a checked calendar date and time of day.
fn to_seconds(y: i64, m: u32, d: u32, hh: u32, mm: u32, ss: u32) -> Option<i64> {
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    Some(days_from_civil(y, m, d) * DAY + (hh * 3600 + mm * 60 + ss) as i64)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 in the proleptic Gregorian calendar (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400; // [0, 399]
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1; // [0, 365]
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; // [0, 146096]
    era * 146_097 + doe - 719_468
}

/// The calendar date of a day number (inverse of `days_from_civil`, H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A timestamp as text [`parse_timestamp`] reads back: `YYYY-MM-DD`, with ` HH:MM:SS` when
/// it is not midnight.
///
/// ```
/// use rnnkit::data::series::{format_timestamp, parse_timestamp};
/// assert_eq!(format_timestamp(0), "1970-01-01");
/// assert_eq!(format_timestamp(86_400 + 3_661), "1970-01-02 01:01:01");
/// let t = parse_timestamp("2024-02-29").unwrap();
/// assert_eq!(parse_timestamp(&format_timestamp(t)), Some(t));
/// ```
pub fn format_timestamp(seconds: i64) -> String {
    let (days, rem) = (seconds.div_euclid(DAY), seconds.rem_euclid(DAY));
    let (y, m, d) = civil_from_days(days);
    if rem == 0 {
        format!("{y:04}-{m:02}-{d:02}")
    } else {
        let (hh, mm, ss) = (rem / 3600, rem / 60 % 60, rem % 60);
        format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}")
    }
}

/// The timestamp `k` steps after `last` for a series whose regular step is `step` seconds.
/// Calendar steps stay on the calendar: a step of 365–366 days adds years and one of 28–31
/// days adds months (keeping the day of the month where it exists), so yearly and monthly
/// series do not drift through leap years and short months; other steps add `k · step`.
///
/// ```
/// use rnnkit::data::series::{format_timestamp, parse_timestamp, step_forward};
/// let y = parse_timestamp("1988").unwrap();
/// let year = 365 * 86_400;
/// assert_eq!(format_timestamp(step_forward(y, year, 2)), "1990-01-01");
/// let m = parse_timestamp("2023-11-01").unwrap();
/// assert_eq!(format_timestamp(step_forward(m, 30 * 86_400, 3)), "2024-02-01");
/// assert_eq!(step_forward(0, 3_600, 5), 18_000);
/// ```
pub fn step_forward(last: i64, step: i64, k: i64) -> i64 {
    let (days, rem) = (last.div_euclid(DAY), last.rem_euclid(DAY));
    let (y, m, d) = civil_from_days(days);
    let months = if (365 * DAY..=366 * DAY).contains(&step) {
        12 * k
    } else if (28 * DAY..=31 * DAY).contains(&step) {
        k
    } else {
        return last + k * step;
    };
    let total = y * 12 + (m as i64 - 1) + months;
    let (ny, nm) = (total.div_euclid(12), (total.rem_euclid(12) + 1) as u32);
    let nd = d.min(days_in_month(ny, nm));
    days_from_civil(ny, nm, nd) * DAY + rem
}

/// Rows absent from a regular series: the series resumes at data row `row` (0-based; `line` is
/// the line in the file) after `missing` steps without a row.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Gap {
    /// 0-based data row where the series resumes after the gap.
    pub row: usize,
    /// The line of that row in the file as an editor shows it (header = line 1).
    pub line: usize,
    /// How many steps have no row.
    pub missing: usize,
}

/// The regular step of a strictly increasing series: the median difference between
/// consecutive timestamps (robust to a few gaps); `None` for fewer than two timestamps.
///
/// ```
/// use rnnkit::data::series::regular_step;
/// assert_eq!(regular_step(&[0, 7, 14, 28, 35]), Some(7));
/// assert_eq!(regular_step(&[0, 7, 21]), Some(7)); // two differences: the lower one
/// ```
pub fn regular_step(timestamps: &[i64]) -> Option<i64> {
    let mut d: Vec<i64> = timestamps.windows(2).map(|w| w[1] - w[0]).collect();
    if d.is_empty() {
        return None;
    }
    d.sort_unstable();
    // The lower median for an even count: gaps only lengthen differences, so of two middle
    // values the smaller is the better guess.
    Some(d[(d.len() - 1) / 2])
}

/// The gaps of a series with the given step: wherever consecutive timestamps are further
/// apart than the step, `round(diff / step) − 1` steps are missing. Rounding keeps calendar
/// steps (months of 28–31 days, years of 365–366) from reading as gaps. `lines[i]` is the
/// file line of row `i`.
///
/// ```
/// use rnnkit::data::series::{find_gaps, Gap};
/// let gaps = find_gaps(&[0, 7, 14, 35], 7, &[2, 3, 4, 5]);
/// assert_eq!(gaps, vec![Gap { row: 3, line: 5, missing: 2 }]);
/// ```
pub fn find_gaps(timestamps: &[i64], step: i64, lines: &[usize]) -> Vec<Gap> {
    if step <= 0 {
        return Vec::new();
    }
    let mut gaps = Vec::new();
    for (i, w) in timestamps.windows(2).enumerate() {
        let steps = ((w[1] - w[0]) as f64 / step as f64).round() as i64;
        if steps > 1 {
            gaps.push(Gap {
                row: i + 1,
                line: lines.get(i + 1).copied().unwrap_or(0),
                missing: (steps - 1) as usize,
            });
        }
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_agree() {
        let day = parse_timestamp("2016-07-01").unwrap();
        assert_eq!(parse_timestamp("20160701"), Some(day));
        assert_eq!(parse_timestamp("2016-07-01 00:00:00"), Some(day));
        assert_eq!(parse_timestamp("2016-07-01T01:30"), Some(day + 5400));
        assert_eq!(parse_timestamp("2016-07"), Some(day));
        assert_eq!(parse_timestamp("1970-01-01"), Some(0));
        // 2000-03-01 is day 11017 (2000 is a leap year).
        assert_eq!(parse_timestamp("2000-03-01"), Some(11_017 * DAY));
        assert_eq!(parse_timestamp("1969-12-31"), Some(-DAY));
    }

    #[test]
    fn rejects_bad_text() {
        for bad in [
            "",
            "abc",
            "1700.5",
            "2016-13-01",
            "2016-02-30",
            "19000229",
            "2016-07-01 24:00",
            "12345",
            "2016/07/01",
            "2016-7-1",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad:?} parsed");
        }
        assert!(parse_timestamp("20000229").is_some()); // leap year
    }

    #[test]
    fn calendar_steps_are_not_gaps() {
        let months: Vec<i64> = (1..=12)
            .map(|m| parse_timestamp(&format!("2001-{m:02}-01")).unwrap())
            .collect();
        let step = regular_step(&months).unwrap();
        assert!(find_gaps(&months, step, &[0; 12]).is_empty());
        let years: Vec<i64> = [1700, 1701, 1702, 1704]
            .iter()
            .map(|y| parse_timestamp(&y.to_string()).unwrap())
            .collect();
        let g = find_gaps(&years, regular_step(&years).unwrap(), &[2, 3, 4, 5]);
        assert_eq!(
            g,
            vec![Gap {
                row: 3,
                line: 5,
                missing: 1
            }]
        );
    }
}
