//! The HTTP/1.1 side of a station's WebSocket handshake, below the OCPP
//! listener: the request head read (bounded in size and time) and parsed
//! with httparse, and the short answers the listener writes itself: `101`
//! with the WebSocket headers, or a status with a text body after which the
//! connection closes. Parsing and answers are free of I/O and unit-tested;
//! [`read`] is the only part that touches the socket.
//!
//! The OCPP listener does not run a general HTTP server: a station's
//! connection carries exactly one request, the upgrade, and everything else
//! gets its answer and is closed.

use std::time::Duration;

use actix_http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::web::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest request head accepted (431 beyond it).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header lines accepted (431 beyond them).
const MAX_HEADERS: usize = 64;
/// Bytes asked of the socket per read while the head arrives.
const READ_STEP: usize = 2 * 1024;

/// A parsed request head.
#[derive(Debug)]
pub struct RequestHead {
    /// The method, as sent (`GET`).
    pub method: String,
    /// The request target, as sent (`/ws/CS1?x=y`).
    pub target: String,
    /// The header lines.
    pub headers: HeaderMap,
}

/// The value of header `name` in `headers` as text, trimmed; None when
/// absent or not text.
pub fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The comma-separated items of every `name` line in `headers`, trimmed,
/// in order (lines that are not text are skipped).
pub fn tokens<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
}

impl RequestHead {
    /// The value of header `name` as text, trimmed; None when absent or not text.
    pub fn header(&self, name: &str) -> Option<&str> {
        text(&self.headers, name)
    }

    /// Whether header `name` lists `token` (comma-separated, any case).
    pub fn lists(&self, name: &str, token: &str) -> bool {
        tokens(&self.headers, name).any(|t| t.eq_ignore_ascii_case(token))
    }
}

/// Why no request head could be taken.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
    /// Not HTTP/1.x (400).
    Malformed(String),
    /// Longer than [`MAX_HEAD_BYTES`] or more than [`MAX_HEADERS`] lines (431).
    TooLarge,
    /// Not complete in time (408).
    Timeout,
    /// The client closed or the socket failed before the head was complete:
    /// nobody to answer.
    Gone,
}

impl HeadError {
    /// The answer to send, if anyone is listening.
    pub fn answer(&self) -> Option<Answer> {
        match self {
            HeadError::Malformed(why) => {
                Some(Answer::text(400, format!("malformed request: {why}\n")))
            }
            HeadError::TooLarge => Some(Answer::text(
                431,
                format!("request head over {MAX_HEAD_BYTES} bytes or {MAX_HEADERS} lines\n"),
            )),
            HeadError::Timeout => Some(Answer::text(408, "request head not sent in time\n")),
            HeadError::Gone => None,
        }
    }
}

/// Parses `buf`: the head and its length in bytes once complete, None while
/// more is needed.
pub fn parse(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut lines = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut lines);
    let length = match request.parse(buf) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD_BYTES => {
            return Err(HeadError::TooLarge)
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(e) => return Err(HeadError::Malformed(e.to_string())),
    };
    if length > MAX_HEAD_BYTES {
        return Err(HeadError::TooLarge);
    }
    let mut headers = HeaderMap::with_capacity(request.headers.len());
    for line in request.headers.iter() {
        let name = HeaderName::from_bytes(line.name.as_bytes())
            .map_err(|_| HeadError::Malformed(format!("header name {:?}", line.name)))?;
        let value = HeaderValue::from_bytes(line.value)
            .map_err(|_| HeadError::Malformed(format!("value of header {}", line.name)))?;
        headers.append(name, value);
    }
    let head = RequestHead {
        method: request.method.unwrap_or_default().to_owned(),
        target: request.path.unwrap_or_default().to_owned(),
        headers,
    };
    Ok(Some((head, length)))
}

/// Reads a request head from `io` within `timeout`. Returns it with the
/// bytes that followed it in the same reads (the first WebSocket frames of
/// a client that did not wait for the 101).
pub async fn read<R: AsyncRead + Unpin>(
    io: &mut R,
    timeout: Duration,
) -> Result<(RequestHead, Bytes), HeadError> {
    let reading = async {
        let mut buf = Vec::with_capacity(READ_STEP);
        loop {
            let start = buf.len();
            buf.resize(start + READ_STEP, 0);
            let read = io
                .read(&mut buf[start..])
                .await
                .map_err(|_| HeadError::Gone)?;
            buf.truncate(start + read);
            if read == 0 {
                return Err(HeadError::Gone);
            }
            if let Some((head, length)) = parse(&buf)? {
                return Ok((head, Bytes::copy_from_slice(&buf[length..])));
            }
        }
    };
    tokio::time::timeout(timeout, reading)
        .await
        .unwrap_or(Err(HeadError::Timeout))
}

/// An answer the listener writes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The status code.
    pub status: u16,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Answer {
    /// `status` with a plain-text `body`; the connection closes after it.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        Answer {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The same answer with one more header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The 101 that completes a WebSocket handshake: `accept` is the
    /// Sec-WebSocket-Accept value, `protocol` the subprotocol chosen (none
    /// when the client offered nothing voltgate speaks).
    pub fn switching(accept: &str, protocol: Option<&str>) -> Self {
        let answer = Answer {
            status: 101,
            headers: vec![
                ("upgrade", "websocket".to_owned()),
                ("connection", "upgrade".to_owned()),
                ("sec-websocket-accept", accept.to_owned()),
            ],
            body: String::new(),
        };
        match protocol {
            Some(protocol) => answer.with_header("sec-websocket-protocol", protocol),
            None => answer,
        }
    }

    /// The bytes on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push_str("\r\n");
        }
        if self.status != 101 {
            out.push_str("content-type: text/plain; charset=utf-8\r\n");
            out.push_str(&format!("content-length: {}\r\n", self.body.len()));
            out.push_str("connection: close\r\n");
        }
        out.push_str("\r\n");
        out.push_str(&self.body);
        out.into_bytes()
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"GET /ws/CS1?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\
        Connection: keep-alive, Upgrade\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\n\r\n";

    #[test]
    fn a_complete_head_is_parsed_with_its_length() {
        let mut bytes = HEAD.to_vec();
        bytes.extend_from_slice(b"\x81\x00");
        let (head, length) = parse(&bytes).unwrap().unwrap();
        assert_eq!(
            length,
            HEAD.len(),
            "frames after the head are not part of it"
        );
        assert_eq!(
            (head.method.as_str(), head.target.as_str()),
            ("GET", "/ws/CS1?x=1")
        );
        assert_eq!(head.header("upgrade"), Some("websocket"));
        assert!(head.lists("connection", "upgrade"));
        assert!(!head.lists("connection", "close"));
        assert_eq!(head.headers.get_all("x-forwarded-for").count(), 2);
    }

    #[test]
    fn a_partial_head_asks_for_more_until_the_bound() {
        assert!(parse(&HEAD[..HEAD.len() - 2]).unwrap().is_none());
        let mut endless = b"GET /ws/CS1 HTTP/1.1\r\nX-Pad: ".to_vec();
        endless.resize(MAX_HEAD_BYTES, b'a');
        assert_eq!(parse(&endless).err(), Some(HeadError::TooLarge));
    }

    #[test]
    fn garbage_and_too_many_lines_are_refused() {
        assert!(matches!(
            parse(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
            Err(HeadError::Malformed(_))
        ));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse(&many).err(), Some(HeadError::TooLarge));
        assert_eq!(HeadError::TooLarge.answer().unwrap().status, 431);
        assert_eq!(HeadError::Timeout.answer().unwrap().status, 408);
        assert_eq!(HeadError::Gone.answer(), None);
    }

    #[test]
    fn answers_are_complete_http() {
        let refusal = Answer::text(429, "slow down\n").with_header("retry-after", "1");
        assert_eq!(
            String::from_utf8(refusal.to_bytes()).unwrap(),
            "HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\n\
             content-type: text/plain; charset=utf-8\r\ncontent-length: 10\r\n\
             connection: close\r\n\r\nslow down\n"
        );
        let upgrade = String::from_utf8(Answer::switching("abc=", Some("ocpp1.6")).to_bytes());
        assert_eq!(
            upgrade.unwrap(),
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\
             sec-websocket-accept: abc=\r\nsec-websocket-protocol: ocpp1.6\r\n\r\n"
        );
    }

    #[actix_rt::test]
    async fn a_head_that_never_ends_times_out() {
        let (mut client, mut server) = tokio::io::duplex(64);
        tokio::io::AsyncWriteExt::write_all(&mut client, b"GET /ws/CS1 HTTP/1.1\r\n")
            .await
            .unwrap();
        let read = read(&mut server, Duration::from_millis(50)).await;
        assert_eq!(read.err(), Some(HeadError::Timeout));
        drop(client);
        assert_eq!(
            super::read(&mut server, Duration::from_secs(1)).await.err(),
            Some(HeadError::Gone)
        );
    }
}
