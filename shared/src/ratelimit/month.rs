//! Calendar months for budgets, from Unix milliseconds (no date library needed).

/// Days since 1970-01-01 → (year, month 1-12, day 1-31); Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month) → days since 1970-01-01 of its first day.
fn days_from_civil(y: i64, m: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM` (UTC) of `unix_ms`, and the milliseconds left until that month ends.
pub fn month_of(unix_ms: u64) -> (String, u64) {
    let days = (unix_ms / 86_400_000) as i64;
    let (y, m, _) = civil_from_days(days);
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let next_ms = days_from_civil(ny, nm) as u64 * 86_400_000;
    (format!("{y:04}-{m:02}"), next_ms.saturating_sub(unix_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months() {
        assert_eq!(month_of(0), ("1970-01".to_string(), 31 * 86_400_000));
        // 2026-11-26T00:00:00Z → 5 days left in November.
        let t = days_from_civil(2026, 11) as u64 * 86_400_000 + 25 * 86_400_000;
        assert_eq!(month_of(t), ("2026-11".to_string(), 5 * 86_400_000));
        let dec31 = days_from_civil(2026, 12) as u64 * 86_400_000 + 30 * 86_400_000 + 1;
        assert_eq!(month_of(dec31).0, "2026-12");
        assert_eq!(month_of(dec31).1, 86_400_000 - 1);
    }
}
