//! What a `Range` header asks of an object. Pure (no actix), so the fuzz crate (`fuzz/`) compiles
//! this file as it is.

/// What a `Range` header asks of an object of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    Full,
    /// Inclusive bounds, as in `Content-Range`.
    Partial {
        first: u64,
        last: u64,
    },
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n`. A malformed or multi-range header is
/// ignored (the whole object is sent).
pub fn parse(header: Option<&str>, size: u64) -> ByteRange {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return ByteRange::Full;
    };
    if spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return ByteRange::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| s.parse::<u64>().ok();
    let (first, last) = match (a.is_empty(), b.is_empty()) {
        (false, true) => match num(a) {
            Some(first) => (first, size.saturating_sub(1)),
            None => return ByteRange::Full,
        },
        (false, false) => match (num(a), num(b)) {
            (Some(first), Some(last)) if first <= last => (first, last.min(size.saturating_sub(1))),
            _ => return ByteRange::Full,
        },
        (true, false) => match num(b) {
            Some(0) => return ByteRange::Unsatisfiable,
            Some(n) => (size.saturating_sub(n), size.saturating_sub(1)),
            None => return ByteRange::Full,
        },
        (true, true) => return ByteRange::Full,
    };
    if first >= size {
        return ByteRange::Unsatisfiable;
    }
    ByteRange::Partial { first, last }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_per_rfc_9110() {
        let p = |h: &str| parse(Some(h), 1000);
        assert_eq!(p("bytes=0-99"), ByteRange::Partial { first: 0, last: 99 });
        assert_eq!(
            p("bytes=900-"),
            ByteRange::Partial {
                first: 900,
                last: 999
            }
        );
        assert_eq!(
            p("bytes=-100"),
            ByteRange::Partial {
                first: 900,
                last: 999
            }
        );
        assert_eq!(
            p("bytes=990-5000"),
            ByteRange::Partial {
                first: 990,
                last: 999
            }
        );
        assert_eq!(
            p("bytes=-5000"),
            ByteRange::Partial {
                first: 0,
                last: 999
            }
        );
        assert_eq!(p("bytes=1000-"), ByteRange::Unsatisfiable);
        assert_eq!(p("bytes=-0"), ByteRange::Unsatisfiable);
        for ignored in [
            "bytes=5-1",
            "bytes=0-1,5-9",
            "items=0-1",
            "bytes=x-",
            "bytes=-",
        ] {
            assert_eq!(p(ignored), ByteRange::Full, "{ignored}");
        }
        assert_eq!(parse(None, 10), ByteRange::Full);
    }
}
