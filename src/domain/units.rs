//! Sizes, costs and times as the console writes them.

/// Bytes in one GB. Like the big clouds' storage billing, a GB here is 2^30 bytes.
pub const BYTES_PER_GB: u64 = 1 << 30;

/// Formats a byte count for people: "512 KB", "1.50 GB".
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KB", "MB", "GB", "TB", "PB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let decimals = if value >= 100.0 || value.fract() == 0.0 {
        0
    } else {
        2
    };
    format!("{} {}", fixed(value, decimals), UNITS[unit])
}

/// `value` (not negative) with `decimals` digits after the point, rounded half away from
/// zero. Written with integers because `{:.2}` links Rust's float formatter, about 25 KB,
/// into the browser bundle.
pub fn fixed(value: f64, decimals: u32) -> String {
    let scale = 10u64.pow(decimals);
    let scaled = (value.max(0.0) * scale as f64).round() as u64;
    if decimals == 0 {
        return scaled.to_string();
    }
    let width = decimals as usize;
    format!("{}.{:0width$}", scaled / scale, scaled % scale)
}

/// An image's size as the guide displays it: anything up to 1 GB shows as 1 GB.
pub fn format_image_size(bytes: u64) -> String {
    format_bytes(bytes.max(BYTES_PER_GB))
}

/// The GB billed for an image: its size in GB, with a 1 GB minimum.
pub fn billable_gb(bytes: u64) -> f64 {
    (bytes as f64 / BYTES_PER_GB as f64).max(1.0)
}

/// Estimated monthly storage cost in the configured currency.
pub fn monthly_cost(bytes: u64, price_per_gb_month: f64) -> f64 {
    billable_gb(bytes) * price_per_gb_month
}

/// Formats money with two decimals, or four when the amount is below one cent.
pub fn format_money(amount: f64, currency: &str) -> String {
    let decimals = if amount > 0.0 && amount < 0.01 { 4 } else { 2 };
    format!("{currency} {}", fixed(amount, decimals))
}

/// Formats a Unix time in milliseconds as "2026-11-23 19:53:04 UTC".
pub fn format_timestamp(ms: i64) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "—".to_owned())
}

/// Formats a Unix time in milliseconds as RFC 3339, for `<time datetime>`.
pub fn format_rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// "24 hours", "90 minutes", "30 seconds", "500 milliseconds".
pub fn describe_duration(duration: std::time::Duration) -> String {
    if duration.subsec_nanos() != 0 {
        return format!("{} milliseconds", duration.as_millis());
    }
    let count = |n: u64, unit: &str| match n {
        1 => format!("1 {unit}"),
        n => format!("{n} {unit}s"),
    };
    match duration.as_secs() {
        s if s >= 3600 && s % 3600 == 0 => count(s / 3600, "hour"),
        s if s >= 60 && s % 60 == 0 => count(s / 60, "minute"),
        s => count(s, "second"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        use std::time::Duration;
        assert_eq!(describe_duration(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(describe_duration(Duration::from_secs(5_400)), "90 minutes");
        assert_eq!(describe_duration(Duration::from_secs(30)), "30 seconds");
        assert_eq!(describe_duration(Duration::from_secs(3600)), "1 hour");
        assert_eq!(describe_duration(Duration::from_secs(60)), "1 minute");
        assert_eq!(
            describe_duration(Duration::from_millis(500)),
            "500 milliseconds"
        );
    }

    #[test]
    fn bytes_for_people() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1024), "1 KB");
        assert_eq!(format_bytes(1536), "1.50 KB");
        assert_eq!(format_bytes(BYTES_PER_GB), "1 GB");
        assert_eq!(format_bytes(5 * BYTES_PER_GB / 2), "2.50 GB");
        assert_eq!(format_bytes(200 * 1024 * 1024), "200 MB");
    }

    #[test]
    fn fixed_point_rounds_like_people_do() {
        assert_eq!(fixed(0.0, 2), "0.00");
        assert_eq!(fixed(1.5, 2), "1.50");
        assert_eq!(fixed(2.345, 1), "2.3");
        assert_eq!(fixed(2.35, 1), "2.4");
        assert_eq!(fixed(0.004, 4), "0.0040");
        assert_eq!(fixed(1023.6, 0), "1024");
        assert_eq!(fixed(12.999, 2), "13.00");
        assert_eq!(fixed(-1.0, 2), "0.00");
    }

    #[test]
    fn image_size_has_one_gb_minimum() {
        assert_eq!(format_image_size(196_616), "1 GB");
        assert_eq!(format_image_size(3 * BYTES_PER_GB), "3 GB");
    }

    #[test]
    fn billing_uses_one_gb_minimum() {
        assert_eq!(billable_gb(0), 1.0);
        assert_eq!(billable_gb(BYTES_PER_GB / 2), 1.0);
        assert_eq!(billable_gb(3 * BYTES_PER_GB), 3.0);
        assert!((monthly_cost(10 * BYTES_PER_GB, 0.05) - 0.5).abs() < 1e-9);
        assert_eq!(format_money(0.5, "USD"), "USD 0.50");
        assert_eq!(format_money(0.004, "USD"), "USD 0.0040");
    }

    #[test]
    fn timestamps() {
        assert_eq!(format_timestamp(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(
            format_timestamp(1_795_463_584_000),
            "2026-11-23 19:53:04 UTC"
        );
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
