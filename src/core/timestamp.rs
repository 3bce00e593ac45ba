//! Times as texts: RFC 3339 in UTC with microseconds (XEP-0082), as MAM's `<delay/>`, FlyChat's
//! history rows and refusals' texts show them.
//!
//! Why a formatter of our own: chrono's (`to_rfc3339_opts`) took about 740 instructions a
//! time, one a row of every history page; the years mixd's clock gives (1970 to 9999) are
//! written here from the day count directly, and every other time still by chrono, so the text
//! is the same for every value (the tests compare them).

use super::Micros;

const MICROS_A_DAY: i64 = 86_400_000_000;
/// 10000-01-01T00:00:00Z: from here on chrono writes a sign and five digits.
const YEAR_10000: Micros = 253_402_300_800_000_000;

/// `at` as an RFC 3339 UTC time with microseconds (XEP-0082), for texts and the wire.
pub fn iso_time(at: Micros) -> String {
    if !(0..YEAR_10000).contains(&at) {
        return chrono::DateTime::<chrono::Utc>::from_timestamp_micros(at)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    }
    let (days, micros) = (at / MICROS_A_DAY, at % MICROS_A_DAY);
    let (year, month, day) = civil_from_days(days);
    let seconds = micros / 1_000_000;
    let fields: [(i64, usize, u8); 7] = [
        (year, 4, b'-'),
        (month, 2, b'-'),
        (day, 2, b'T'),
        (seconds / 3600, 2, b':'),
        (seconds / 60 % 60, 2, b':'),
        (seconds % 60, 2, b'.'),
        (micros % 1_000_000, 6, b'Z'),
    ];
    let mut text = [0u8; 27];
    let mut at = 0;
    for (value, digits, after) in fields {
        let mut value = value;
        for i in (0..digits).rev() {
            text[at + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
        text[at + digits] = after;
        at += digits + 1;
    }
    std::str::from_utf8(&text).expect("ASCII").to_owned()
}

/// The proleptic Gregorian date of day `days` since 1970-01-01 (which is 0), for `days` ≥ 0:
/// Howard Hinnant's `civil_from_days`, in eras of 400 years counted from 0000-03-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono(at: Micros) -> String {
        chrono::DateTime::<chrono::Utc>::from_timestamp_micros(at)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    }

    /// The same text as chrono's for days from 1970 into 10001 (at a time of day that moves
    /// with the day), around every edge, and for times drawn from a fixed sequence
    /// over the whole range of `Micros`.
    #[test]
    fn times_are_written_as_chrono_writes_them() {
        // Every day to 2500 (the leap years' centuries included), every 13th after.
        let days = (0..194_000).chain((194_000..YEAR_10000 / MICROS_A_DAY + 400).step_by(13));
        let mut times: Vec<Micros> = days
            .map(|day| day * MICROS_A_DAY + (day * 7_777_777_777) % MICROS_A_DAY)
            .collect();
        for edge in [0, YEAR_10000, 951_782_400_000_000, 4_107_542_400_000_000] {
            times.extend((-3..=3).map(|d| edge + d));
            times.extend((-3..=3).map(|d| edge + d * MICROS_A_DAY - 1));
        }
        times.extend([i64::MIN, i64::MAX, -1, 1_700_000_000_123_456]);
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        times.extend((0..100_000).map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as i64 >> (state % 8 * 2)
        }));
        for at in times {
            assert_eq!(iso_time(at), chrono(at), "{at}");
        }
        assert_eq!(iso_time(1_000_000), "1970-01-01T00:00:01.000000Z");
    }
}
