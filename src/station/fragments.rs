//! Reassembly of fragmented WebSocket text messages, bounded by the largest
//! message a station may send. Pure: the actor feeds it continuation frames
//! and closes the connection with the verdict's code when it is broken.

use actix_http::ws::{CloseCode, Item};

/// Why a fragmented message cannot be read; the connection closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// A binary message (OCPP-J is text).
    Binary,
    /// A continuation without its first frame.
    NoFirstFrame,
    /// The pieces together exceed the limit.
    TooLarge,
    /// The whole is not UTF-8.
    NotUtf8,
}

impl Broken {
    /// The close code the connection ends with.
    pub fn close_code(self) -> CloseCode {
        match self {
            Broken::Binary => CloseCode::Unsupported,
            Broken::NoFirstFrame => CloseCode::Protocol,
            Broken::TooLarge => CloseCode::Size,
            Broken::NotUtf8 => CloseCode::Invalid,
        }
    }

    /// What the close frame says.
    pub fn description(self) -> &'static str {
        match self {
            Broken::Binary => "OCPP-J is text",
            Broken::NoFirstFrame => "continuation without a first frame",
            Broken::TooLarge => "message too large",
            Broken::NotUtf8 => "text message is not UTF-8",
        }
    }
}

/// The pieces of the message being received.
#[derive(Debug)]
pub struct Reassembly {
    buffer: Option<Vec<u8>>,
    limit: usize,
}

impl Reassembly {
    /// Reassembles messages of at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Reassembly {
            buffer: None,
            limit,
        }
    }

    /// Takes one continuation frame: the whole message once its last piece
    /// arrived, nothing while more are to come, or why it is broken.
    pub fn push(&mut self, item: Item) -> Result<Option<String>, Broken> {
        let (start, chunk, last) = match item {
            Item::FirstText(b) => (true, b, false),
            Item::FirstBinary(_) => return Err(Broken::Binary),
            Item::Continue(b) => (false, b, false),
            Item::Last(b) => (false, b, true),
        };
        let buffer = if start {
            self.buffer.insert(Vec::new())
        } else {
            self.buffer.as_mut().ok_or(Broken::NoFirstFrame)?
        };
        if buffer.len() + chunk.len() > self.limit {
            self.buffer = None;
            return Err(Broken::TooLarge);
        }
        buffer.extend_from_slice(&chunk);
        if !last {
            return Ok(None);
        }
        let bytes = self.buffer.take().unwrap_or_default();
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Broken::NotUtf8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::web::Bytes;

    #[test]
    fn pieces_become_one_message_within_the_limit() {
        let mut r = Reassembly::new(10);
        assert_eq!(
            r.push(Item::FirstText(Bytes::from_static(b"[2,"))),
            Ok(None)
        );
        assert_eq!(
            r.push(Item::Continue(Bytes::from_static(b"\"a\""))),
            Ok(None)
        );
        assert_eq!(
            r.push(Item::Last(Bytes::from_static(b"]"))),
            Ok(Some("[2,\"a\"]".to_owned()))
        );
        assert_eq!(
            r.push(Item::Last(Bytes::from_static(b"]"))),
            Err(Broken::NoFirstFrame)
        );
        r.push(Item::FirstText(Bytes::from_static(b"123456")))
            .unwrap();
        assert_eq!(
            r.push(Item::Continue(Bytes::from_static(b"78901"))),
            Err(Broken::TooLarge)
        );
        assert_eq!(
            r.push(Item::FirstBinary(Bytes::from_static(b"x"))),
            Err(Broken::Binary)
        );
        r.push(Item::FirstText(Bytes::from_static(&[0xff])))
            .unwrap();
        assert_eq!(r.push(Item::Last(Bytes::new())), Err(Broken::NotUtf8));
        assert_eq!(Broken::TooLarge.close_code(), CloseCode::Size);
    }
}
