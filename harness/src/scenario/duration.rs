//! Durations as people write them in scenario files: `500ms`, `10s`, `2m`, `1h30m`, `1m30s`.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

/// A duration that is not numbers with units (the text as written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid duration `{0}`: use a number with a unit (ms, s, m, h), e.g. `500ms`, `30s`, `1m30s`"
)]
pub struct DurationError(pub String);

impl Dur {
    pub fn parse(s: &str) -> Result<Dur, DurationError> {
        let err = || DurationError(s.to_owned());
        let mut total = Duration::ZERO;
        let mut rest = s.trim();
        if rest.is_empty() {
            return Err(err());
        }
        while !rest.is_empty() {
            let num_end = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .ok_or_else(err)?;
            if num_end == 0 {
                return Err(err());
            }
            let n: f64 = rest[..num_end].parse().map_err(|_| err())?;
            rest = &rest[num_end..];
            let unit_end = rest
                .find(|c: char| c.is_ascii_digit() || c == '.')
                .unwrap_or(rest.len());
            let secs = match &rest[..unit_end] {
                "ms" => n / 1000.0,
                "s" => n,
                "m" => n * 60.0,
                "h" => n * 3600.0,
                _ => return Err(err()),
            };
            total += Duration::from_secs_f64(secs);
            rest = &rest[unit_end..];
        }
        Ok(Dur(total))
    }

    pub fn scaled(self, factor: f64) -> Dur {
        Dur(self.0.mul_f64(factor))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if !ms.is_multiple_of(1000) {
            write!(f, "{ms}ms")
        } else {
            write!(f, "{}s", ms / 1000)
        }
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Dur::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(Dur::parse("500ms").unwrap().0, Duration::from_millis(500));
        assert_eq!(Dur::parse("10s").unwrap().0, Duration::from_secs(10));
        assert_eq!(Dur::parse("1m30s").unwrap().0, Duration::from_secs(90));
        assert_eq!(Dur::parse("1.5s").unwrap().0, Duration::from_millis(1500));
        assert_eq!(Dur::parse("2h").unwrap().0, Duration::from_secs(7200));
        for bad in ["", "10", "s", "10x", "ten s", "-1s", "1s2"] {
            assert!(Dur::parse(bad).is_err(), "{bad:?}");
        }
    }
}
