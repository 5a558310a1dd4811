//! Requests as bytes on a fresh TCP connection, and the answer read back: every
//! byte of the path goes out as written (no client normalizes `..` or re-encodes
//! invalid UTF-8), and a body can be declared without being sent, or streamed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::harness::Reply;

/// One request as sent on the wire.
pub(super) struct Wire {
    pub(super) method: String,
    pub(super) path: Vec<u8>,
    pub(super) headers: Vec<(String, String)>,
    pub(super) body: Vec<u8>,
    /// Sent with `Transfer-Encoding: chunked` instead of a `Content-Length`.
    pub(super) chunked: bool,
    /// Only the headers go out, declaring this length (a body over the gateway limit).
    pub(super) declared_only: Option<usize>,
}

impl Wire {
    pub(super) fn new(method: &str, path: impl Into<Vec<u8>>) -> Wire {
        Wire {
            method: method.to_string(),
            path: path.into(),
            headers: Vec::new(),
            body: Vec::new(),
            chunked: false,
            declared_only: None,
        }
    }

    pub(super) fn header(mut self, name: &str, value: &str) -> Wire {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub(super) fn body(mut self, body: impl Into<Vec<u8>>) -> Wire {
        self.body = body.into();
        self
    }
}

impl Wire {
    /// The start line and header lines (each ending in CRLF), without the blank
    /// line that ends the head or any framing header.
    pub(super) fn head_lines(&self, addr: &str) -> Vec<u8> {
        let mut head = Vec::new();
        head.extend_from_slice(self.method.as_bytes());
        head.push(b' ');
        head.extend_from_slice(&self.path);
        head.extend_from_slice(
            format!(" HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n").as_bytes(),
        );
        for (name, value) in &self.headers {
            head.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        head
    }
}

/// Sends `wire` to the gateway at `base` over a fresh connection and reads the answer
/// (the connection is closed after it).
pub(super) fn send(base: &str, wire: &Wire) -> Reply {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect to the gateway");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    let mut head = wire.head_lines(addr);
    if let Some(length) = wire.declared_only {
        head.extend_from_slice(format!("content-length: {length}\r\n\r\n").as_bytes());
        stream.write_all(&head).expect("write the request head");
    } else if wire.chunked {
        head.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
        // The gateway may answer (and close) once the limit is passed: later writes
        // may fail, the answer is still there to read.
        let _ = stream.write_all(&head);
        for chunk in wire.body.chunks(64 * 1024) {
            let _ = stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
            let _ = stream.write_all(chunk);
            let _ = stream.write_all(b"\r\n");
        }
        let _ = stream.write_all(b"0\r\n\r\n");
    } else {
        head.extend_from_slice(format!("content-length: {}\r\n\r\n", wire.body.len()).as_bytes());
        head.extend_from_slice(&wire.body);
        stream.write_all(&head).expect("write the request");
    }
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw);
    if raw.is_empty() {
        panic!("no answer: {read:?}");
    }
    parse_response(&raw)
}

/// An HTTP/1.1 response (the body either `Content-Length` long, chunked, or up to the
/// close).
pub(super) fn parse_response(raw: &[u8]) -> Reply {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let mut body = Vec::new();
    if chunked {
        loop {
            let line_end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .expect("chunk size line");
            let size_text = String::from_utf8_lossy(&rest[..line_end]).to_string();
            let size = usize::from_str_radix(size_text.trim(), 16).expect("chunk size");
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            body.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
    } else {
        body.extend_from_slice(rest);
    }
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    }
}
