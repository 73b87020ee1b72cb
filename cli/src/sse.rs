//! A Server-Sent Events parser (the `text/event-stream` format of the HTML standard), fed the
//! bytes as they arrive. It is small enough to own: the crates that do this bring a parser
//! combinator library and a `Stream` adapter this client has no other use for.

/// The longest event (its lines together) kept in memory: a job document is a few KiB.
const MAX_EVENT_BYTES: usize = 1 << 20;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `event:`, or `message` when the event named none.
    pub event: String,
    /// The `data:` lines, joined by `\n`.
    pub data: String,
    /// The last `id:` seen so far in the stream.
    pub id: Option<String>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("an event of the stream is longer than {MAX_EVENT_BYTES} bytes")]
pub struct TooLong;

/// The parser's state between chunks.
#[derive(Debug, Default)]
pub struct Parser {
    /// Bytes of a line not yet terminated.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs to it.
    after_cr: bool,
    /// Past the first line (a byte-order mark is only skipped there).
    started: bool,
    event: String,
    data: String,
    has_data: bool,
    id: Option<String>,
}

impl Parser {
    /// Parses `chunk` and answers the events it completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Event>, TooLong> {
        let mut events = Vec::new();
        for &byte in chunk {
            let after_cr = std::mem::take(&mut self.after_cr);
            match byte {
                b'\n' if after_cr => {}
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    if let Some(event) = self.line_done(&line) {
                        events.push(event);
                    }
                }
                _ => {
                    self.line.push(byte);
                    if self.line.len() + self.data.len() > MAX_EVENT_BYTES {
                        return Err(TooLong);
                    }
                }
            }
        }
        Ok(events)
    }

    fn line_done(&mut self, bytes: &[u8]) -> Option<Event> {
        let mut line = String::from_utf8_lossy(bytes).into_owned();
        if !std::mem::replace(&mut self.started, true) {
            if let Some(rest) = line.strip_prefix('\u{feff}') {
                line = rest.to_owned();
            }
        }
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None; // a comment (the gateway's keep-alive)
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_str(), ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => self.id = Some(value.to_owned()),
            _ => {} // `retry` and unknown fields: nothing this client uses
        }
        None
    }

    fn dispatch(&mut self) -> Option<Event> {
        let event = std::mem::take(&mut self.event);
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        Some(Event {
            event: if event.is_empty() {
                "message".to_owned()
            } else {
                event
            },
            data: std::mem::take(&mut self.data),
            id: self.id.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(event: &str, data: &str, id: Option<&str>) -> Event {
        Event {
            event: event.into(),
            data: data.into(),
            id: id.map(Into::into),
        }
    }

    fn parse(chunks: &[&[u8]]) -> Vec<Event> {
        let mut parser = Parser::default();
        chunks
            .iter()
            .flat_map(|c| parser.feed(c).unwrap())
            .collect()
    }

    const GATEWAY: &str = "id: 17\nevent: queued\ndata: {\"state\":\"queued\"}\n\n\
                           : keep-alive\n\n\
                           id: 18\nevent: completed\ndata: {\"state\":\"completed\"}\n\n";

    #[test]
    fn the_gateways_frames_are_read_and_comments_skipped() {
        assert_eq!(
            parse(&[GATEWAY.as_bytes()]),
            vec![
                event("queued", "{\"state\":\"queued\"}", Some("17")),
                event("completed", "{\"state\":\"completed\"}", Some("18")),
            ]
        );
    }

    #[test]
    fn events_split_anywhere_across_chunks_come_out_the_same() {
        let whole = parse(&[GATEWAY.as_bytes()]);
        let bytes = GATEWAY.replace('\n', "\r\n");
        let bytes = bytes.as_bytes();
        for cut in 0..=bytes.len() {
            assert_eq!(
                parse(&[&bytes[..cut], &bytes[cut..]]),
                whole,
                "cut at {cut}"
            );
        }
        let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(parse(&one_by_one), whole);
    }

    #[test]
    fn every_line_ending_and_the_fields_fine_print_follow_the_standard() {
        // CR alone ends a line; several data lines are joined by LF; one space after the
        // colon is dropped, a second is kept; a field without a colon has an empty value.
        let text = "\u{feff}data:a\rdata:  b\r\ndata\n\nevent: x\nfoo: bar\nretry: 10\ndata: c\n\n";
        assert_eq!(
            parse(&[text.as_bytes()]),
            vec![event("message", "a\n b\n", None), event("x", "c", None)]
        );
    }

    #[test]
    fn an_event_without_data_or_without_its_blank_line_is_not_dispatched() {
        assert_eq!(parse(&[b"event: queued\n\ndata: x\n"]), vec![]);
        // The name of an undispatched event does not leak into the next one.
        assert_eq!(
            parse(&[b"event: queued\n\ndata: x\n\n"]),
            vec![event("message", "x", None)]
        );
    }

    #[test]
    fn an_endless_line_is_refused_instead_of_kept() {
        let mut parser = Parser::default();
        let chunk = vec![b'x'; 64 * 1024];
        let mut result = Ok(Vec::new());
        for _ in 0..=MAX_EVENT_BYTES / chunk.len() {
            result = parser.feed(&chunk);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(TooLong));
    }
}
