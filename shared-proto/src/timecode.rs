//! Timecodes: `HH:MM:SS[.ffffff]`, held as whole microseconds so arithmetic is exact.

use serde::{Deserialize, Serialize};
use std::fmt;

const MICROS_PER_SEC: u64 = 1_000_000;
/// The seed's names carry two hour digits, so 99:59:59.999999 is the largest timecode.
const MAX_HOURS: u64 = 99;

/// A point in a video, exact to the microsecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timecode(u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a timecode: {reason} (expected HH:MM:SS or HH:MM:SS.ffffff)")]
pub struct TimecodeError {
    input: String,
    reason: &'static str,
}

impl Timecode {
    pub const ZERO: Timecode = Timecode(0);

    pub const fn from_micros(micros: u64) -> Self {
        Timecode(micros)
    }

    pub fn as_micros(self) -> u64 {
        self.0
    }

    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / MICROS_PER_SEC as f64
    }

    /// Rounds to the nearest microsecond; negative and non-finite values become zero.
    pub fn from_secs_f64(secs: f64) -> Self {
        if secs.is_finite() && secs > 0.0 {
            Timecode((secs * MICROS_PER_SEC as f64).round() as u64)
        } else {
            Timecode::ZERO
        }
    }

    /// `self − earlier`, or `None` when `earlier` is later: clip length is exact, never borrowed
    /// wrongly (the seed's defect).
    pub fn checked_sub(self, earlier: Timecode) -> Option<Timecode> {
        self.0.checked_sub(earlier.0).map(Timecode)
    }

    /// Parses `HH:MM:SS` with an optional fraction of one to six digits.
    pub fn parse(input: &str) -> Result<Self, TimecodeError> {
        let err = |reason| TimecodeError {
            input: input.chars().take(64).collect(),
            reason,
        };
        let (clock, fraction) = match input.split_once('.') {
            Some((clock, fraction)) => (clock, Some(fraction)),
            None => (input, None),
        };
        let parts: Vec<&str> = clock.split(':').collect();
        let [h, m, s] = parts.as_slice() else {
            return Err(err("it needs three fields separated by `:`"));
        };
        let field = |text: &str, max: u64, name| -> Result<u64, TimecodeError> {
            if text.len() != 2 || !text.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err(name));
            }
            let value: u64 = text.parse().map_err(|_| err(name))?;
            if value > max {
                return Err(err(name));
            }
            Ok(value)
        };
        let hours = field(h, MAX_HOURS, "hours must be two digits")?;
        let minutes = field(m, 59, "minutes must be two digits from 00 to 59")?;
        let seconds = field(s, 59, "seconds must be two digits from 00 to 59")?;
        let micros = match fraction {
            None => 0,
            Some(f) if (1..=6).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()) => {
                let padded = format!("{f:0<6}");
                padded
                    .parse::<u64>()
                    .map_err(|_| err("the fraction must be 1 to 6 digits"))?
            }
            Some(_) => return Err(err("the fraction must be 1 to 6 digits")),
        };
        Ok(Timecode(
            ((hours * 60 + minutes) * 60 + seconds) * MICROS_PER_SEC + micros,
        ))
    }

    fn fields(self) -> (u64, u64, u64, u64) {
        let secs = self.0 / MICROS_PER_SEC;
        (
            secs / 3600,
            (secs / 60) % 60,
            secs % 60,
            self.0 % MICROS_PER_SEC,
        )
    }

    /// `HHMMSSffffff`, the form used inside the seed's file names.
    pub fn seed_fragment(self) -> String {
        let (h, m, s, us) = self.fields();
        format!("{h:02}{m:02}{s:02}{us:06}")
    }

    /// Reads the twelve digits of [`Timecode::seed_fragment`] back.
    pub fn parse_seed_fragment(input: &str) -> Option<Self> {
        if input.len() != 12 || !input.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let clock = format!(
            "{}:{}:{}.{}",
            &input[0..2],
            &input[2..4],
            &input[4..6],
            &input[6..]
        );
        Timecode::parse(&clock).ok()
    }

    /// The argument form ffmpeg takes for `-ss` and `-t`: seconds with six decimals.
    pub fn ffmpeg_arg(self) -> String {
        format!("{}.{:06}", self.0 / MICROS_PER_SEC, self.0 % MICROS_PER_SEC)
    }
}

/// `HH:MM:SS`, with the fraction only when there is one (trailing zeros dropped).
impl fmt::Display for Timecode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s, us) = self.fields();
        write!(f, "{h:02}:{m:02}:{s:02}")?;
        if us != 0 {
            let fraction = format!("{us:06}");
            write!(f, ".{}", fraction.trim_end_matches('0'))?;
        }
        Ok(())
    }
}

impl Serialize for Timecode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timecode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timecode::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Timecode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(r"^[0-9]{2}:[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?$"))
            .description(Some(
                "HH:MM:SS with an optional fraction of up to six digits",
            ))
            .examples(["00:01:02.5"])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Timecode {}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc(s: &str) -> Timecode {
        Timecode::parse(s).unwrap()
    }

    #[test]
    fn whole_seconds_and_fractions_parse_to_exact_microseconds() {
        assert_eq!(tc("00:00:03").as_micros(), 3_000_000);
        assert_eq!(tc("00:01:02.5").as_micros(), 62_500_000);
        assert_eq!(tc("01:00:00.000001").as_micros(), 3_600_000_001);
        assert_eq!(tc("99:59:59.999999").as_micros(), 359_999_999_999);
    }

    #[test]
    fn malformed_timecodes_are_rejected_with_the_input_named() {
        for bad in [
            "5",
            "Mon",
            "",
            "0:00:03",
            "00:60:00",
            "00:00:60",
            "00:00:03.",
            "00:00:03.1234567",
            "-0:00:03",
            "00:00:-3",
            "00:00:03.5x",
            "aa:bb:cc",
            "00:00:00:00",
            " 00:00:03",
            "100:00:00",
            "00:00:03,5",
        ] {
            let err = Timecode::parse(bad).unwrap_err();
            assert!(
                err.to_string().contains(&format!("`{bad}`")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn subtraction_borrows_correctly_where_the_seed_did_not() {
        assert_eq!(
            tc("00:05:01").checked_sub(tc("00:04:58")),
            Some(tc("00:00:03"))
        );
        assert_eq!(
            tc("00:00:01.2").checked_sub(tc("00:00:00.5")),
            Some(tc("00:00:00.7"))
        );
        assert_eq!(tc("00:00:01").checked_sub(tc("00:00:02")), None);
    }

    #[test]
    fn display_drops_a_zero_fraction_and_trailing_zeros() {
        assert_eq!(tc("00:00:03").to_string(), "00:00:03");
        assert_eq!(tc("00:01:02.500").to_string(), "00:01:02.5");
        assert_eq!(tc("10:01:02.000250").to_string(), "10:01:02.00025");
    }

    #[test]
    fn seed_fragments_round_trip() {
        assert_eq!(tc("00:00:03").seed_fragment(), "000003000000");
        assert_eq!(tc("00:01:02.5").seed_fragment(), "000102500000");
        for s in ["00:00:00", "12:34:56.789012", "99:59:59.999999"] {
            assert_eq!(
                Timecode::parse_seed_fragment(&tc(s).seed_fragment()),
                Some(tc(s))
            );
        }
        assert_eq!(Timecode::parse_seed_fragment("00000300000"), None);
        assert_eq!(Timecode::parse_seed_fragment("0000030000000"), None);
        assert_eq!(Timecode::parse_seed_fragment("006000000000"), None);
    }

    #[test]
    fn ffmpeg_arguments_are_decimal_seconds() {
        assert_eq!(tc("00:01:02.5").ffmpeg_arg(), "62.500000");
        assert_eq!(Timecode::from_secs_f64(2.9999996).ffmpeg_arg(), "3.000000");
        assert_eq!(Timecode::from_secs_f64(-1.0), Timecode::ZERO);
    }
}
