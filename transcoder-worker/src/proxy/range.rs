//! The proxy's two parsers of bytes from outside: the `Range` ffmpeg asks for and the
//! source's `Content-Range`. Pure (no tokio, no reqwest), so the fuzz crate (`fuzz/`)
//! compiles this file as it is.

/// Offsets past this are no file's (ffmpeg's are `int64_t`), and refusing them keeps the
/// proxy's window arithmetic (`first + WINDOW`) from overflowing.
const MAX_OFFSET: u64 = i64::MAX as u64;

/// Parses `bytes=A-` or `bytes=A-B`. `B` before `A`, or an offset past `i64::MAX`, is no range
/// (RFC 9110: invalid), as if none was asked for.
pub fn parse_range(range: Option<&str>) -> Option<(u64, Option<u64>)> {
    let (a, b) = range?.strip_prefix("bytes=")?.split_once('-')?;
    let first = a.trim().parse().ok().filter(|first| *first <= MAX_OFFSET)?;
    let last = match b.trim() {
        "" => None,
        b => Some(
            b.parse()
                .ok()
                .filter(|last| *last >= first && *last <= MAX_OFFSET)?,
        ),
    };
    Some((first, last))
}

/// The total size in a `Content-Range` value, `bytes A-B/TOTAL`.
pub fn total_size(content_range: &str) -> Option<u64> {
    content_range.rsplit('/').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_from_ffmpeg_parse() {
        assert_eq!(parse_range(Some("bytes=0-")), Some((0, None)));
        assert_eq!(parse_range(Some("bytes=100-199")), Some((100, Some(199))));
        assert_eq!(parse_range(Some("items=1-2")), None);
        assert_eq!(parse_range(None), None);
    }

    /// Found by `fuzz/` (range_header): the proxy answered `last + 1 - first` bytes, which
    /// overflows when the range ends before it starts.
    #[test]
    fn a_range_that_ends_before_it_starts_is_no_range() {
        assert_eq!(parse_range(Some("bytes=5-1")), None);
        assert_eq!(parse_range(Some("bytes=5-5")), Some((5, Some(5))));
    }

    /// Found in review of the fuzzing: a start near `u64::MAX` overflowed the proxy's first
    /// window (`first + WINDOW - 1`).
    #[test]
    fn offsets_past_any_file_are_no_range() {
        assert_eq!(parse_range(Some("bytes=18446744073709551615-")), None);
        assert_eq!(parse_range(Some("bytes=0-18446744073709551615")), None);
        let max = i64::MAX as u64;
        assert_eq!(
            parse_range(Some(&format!("bytes={max}-"))),
            Some((max, None))
        );
    }

    #[test]
    fn the_total_is_read_from_a_content_range() {
        assert_eq!(total_size("bytes 0-131071/1048576"), Some(1_048_576));
        assert_eq!(total_size("bytes */1000"), Some(1000));
        assert_eq!(total_size("bytes 0-99/*"), None);
        assert_eq!(total_size("bytes 0-0/18446744073709551616"), None);
    }
}
