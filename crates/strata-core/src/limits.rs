//! An image's limits: how long each stage of its pipeline may run, and how
//! big the image may be. The defaults, the stage keys and the text forms
//! (`45m`, `12GB`) are defined here and nowhere else.
//!
//! Durations are read by `humantime` (`30m`, `4h`, `1h 30m`) and sizes by
//! `bytesize` (`12GB` is decimal, `12GiB` binary), both made for the job.

use std::collections::BTreeMap;
use std::time::Duration;

/// The stages a time limit can be set for, by the key spec.yml and
/// `--timeout` use, with the default limit: one a real stack fits (a
/// full datascience image builds in about an hour; its tests in minutes).
pub const STAGE_TIMEOUTS: [(&str, Duration); 7] = [
    ("build", Duration::from_secs(3 * 3600)),
    ("basic_tests", Duration::from_secs(30 * 60)),
    ("push", Duration::from_secs(3600)),
    // Each gate has its own limit (10 minutes unless it says otherwise).
    ("gates", Duration::from_secs(3 * 3600)),
    ("integration_tests", Duration::from_secs(30 * 60)),
    // The manifest stage runs the info commands.
    ("manifest", Duration::from_secs(5 * 60)),
    ("prune", Duration::from_secs(10 * 60)),
];

/// The stage keys, for messages.
pub fn stage_keys() -> impl Iterator<Item = &'static str> {
    STAGE_TIMEOUTS.iter().map(|(k, _)| *k)
}

/// The key of a stage as written: `basic-tests` (the stage's name in logs)
/// and `basic_tests` (the spec's key) are the same stage.
pub fn stage_key(written: &str) -> Option<&'static str> {
    let normal = written.replace('-', "_");
    stage_keys().find(|k| *k == normal)
}

/// The default time limit of a stage key.
pub fn default_timeout(key: &str) -> Option<Duration> {
    STAGE_TIMEOUTS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, d)| *d)
}

/// The time limit of stage `key`: the run's `--timeout` over the image's
/// `timeouts:` over the default.
pub fn timeout(
    key: &str,
    image: &BTreeMap<String, Duration>,
    run: &BTreeMap<String, Duration>,
) -> Option<Duration> {
    run.get(key)
        .or_else(|| image.get(key))
        .copied()
        .or_else(|| default_timeout(key))
}

/// Reads a duration: `45m`, `4h`, `1h 30m`, `90s`. Zero is refused (a
/// stage that may not run at all is not a limit).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text.trim())
        .map_err(|e| format!("'{text}' is not a duration ({e}); write e.g. 45m, 4h or 1h 30m"))?;
    if d.is_zero() {
        return Err(format!(
            "'{text}' is no time at all; give a limit above zero"
        ));
    }
    Ok(d)
}

/// A duration as a limit is written: `30m`, `3h`, `1h 30m`, `5s`.
pub fn format_duration(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs().max(1))).to_string()
}

/// Reads a size: `12GB` (decimal), `12GiB` (binary), `500 MB`, or bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|e| format!("'{text}' is not a size ({e}); write e.g. 12GB or 11.5GiB"))
}

/// A size for people: `12.0 GB` (decimal units, as registries show sizes).
pub fn format_size(bytes: u64) -> String {
    bytesize::ByteSize::b(bytes).display().si().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("45m"), Ok(Duration::from_secs(2700)));
        assert_eq!(parse_duration("4h"), Ok(Duration::from_secs(14400)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration(" 5s "), Ok(Duration::from_secs(5)));
        assert!(parse_duration("0s").unwrap_err().contains("above zero"));
        assert!(parse_duration("soon").unwrap_err().contains("45m"));
        assert!(parse_duration("45").is_err(), "a bare number has no unit");
    }

    #[test]
    fn durations_print_as_they_are_written() {
        assert_eq!(format_duration(Duration::from_secs(1800)), "30m");
        assert_eq!(format_duration(Duration::from_secs(3 * 3600)), "3h");
        assert_eq!(format_duration(Duration::from_secs(5)), "5s");
        assert_eq!(format_duration(Duration::from_millis(5400)), "5s");
    }

    #[test]
    fn sizes_read_decimal_and_binary_units() {
        assert_eq!(parse_size("12GB"), Ok(12_000_000_000));
        assert_eq!(parse_size("12 GiB"), Ok(12 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("1.5GiB"), Ok(1_610_612_736));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert!(parse_size("big").unwrap_err().contains("12GB"));
        assert_eq!(format_size(12_000_000_000), "12.0 GB");
    }

    #[test]
    fn the_run_wins_over_the_image_over_the_default() {
        let image = BTreeMap::from([("build".to_string(), Duration::from_secs(4 * 3600))]);
        let run = BTreeMap::from([("basic_tests".to_string(), Duration::from_secs(5))]);
        assert_eq!(
            timeout("build", &image, &run),
            Some(Duration::from_secs(4 * 3600))
        );
        assert_eq!(
            timeout("basic_tests", &image, &run),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            timeout("manifest", &image, &run),
            Some(Duration::from_secs(300))
        );
        assert_eq!(timeout("nope", &image, &BTreeMap::new()), None);
        assert_eq!(stage_key("basic-tests"), Some("basic_tests"));
        assert_eq!(stage_key("tests"), None);
    }
}
