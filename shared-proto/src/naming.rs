//! The seed's output names: `{video_id}_from_{HHMMSSffffff|start}_till_{HHMMSSffffff|end}.mp4`.
//! Names are parsed back into their parts and looked up; they are never joined into a path.

use crate::spec::validate_video_id;
use crate::Timecode;

/// The seed's name for a clip of `video_id` between the bounds.
pub fn seed_name(video_id: &str, start: Option<Timecode>, stop: Option<Timecode>) -> String {
    let from = start.map_or_else(|| "start".to_owned(), Timecode::seed_fragment);
    let till = stop.map_or_else(|| "end".to_owned(), Timecode::seed_fragment);
    format!("{video_id}_from_{from}_till_{till}.mp4")
}

/// A parsed seed name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedName {
    pub video_id: String,
    pub start: Option<Timecode>,
    pub stop: Option<Timecode>,
}

/// Parses a seed name strictly; anything that [`seed_name`] could not have produced is `None`.
pub fn parse_seed_name(name: &str) -> Option<SeedName> {
    let stem = name.strip_suffix(".mp4")?;
    let (head, till) = stem.rsplit_once("_till_")?;
    let (video_id, from) = head.rsplit_once("_from_")?;
    validate_video_id(video_id).ok()?;
    let start = match from {
        "start" => None,
        digits => Some(Timecode::parse_seed_fragment(digits)?),
    };
    let stop = match till {
        "end" => None,
        digits => Some(Timecode::parse_seed_fragment(digits)?),
    };
    Some(SeedName {
        video_id: video_id.to_owned(),
        start,
        stop,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc(s: &str) -> Option<Timecode> {
        Some(Timecode::parse(s).unwrap())
    }

    #[test]
    fn names_match_the_seed_examples() {
        assert_eq!(
            seed_name("abc", tc("00:00:03"), tc("00:00:06")),
            "abc_from_000003000000_till_000006000000.mp4"
        );
        assert_eq!(seed_name("abc", None, None), "abc_from_start_till_end.mp4");
    }

    #[test]
    fn names_parse_back_even_when_the_id_contains_the_separators() {
        for (id, start, stop) in [
            ("abc", tc("00:00:03"), tc("00:00:06")),
            ("a_from_b_till_c", None, tc("01:02:03.5")),
            ("x-y", tc("00:00:00.000001"), None),
        ] {
            let parsed = parse_seed_name(&seed_name(id, start, stop)).unwrap();
            assert_eq!(
                (parsed.video_id.as_str(), parsed.start, parsed.stop),
                (id, start, stop)
            );
        }
    }

    #[test]
    fn anything_else_is_not_a_name() {
        for bad in [
            "../../etc/passwd",
            "abc_from_start_till_end.mkv",
            "../abc_from_start_till_end.mp4",
            "abc_from_00000300000_till_end.mp4",
            "abc_from_soon_till_end.mp4",
            "_from_start_till_end.mp4",
            "abc+def_from_start_till_end.mp4",
            "abc_till_end.mp4",
        ] {
            assert_eq!(parse_seed_name(bad), None, "{bad}");
        }
    }
}
