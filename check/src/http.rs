//! The probe: one HTTP/1.1 GET over a connection made inside the sandbox's network namespace.
//!
//! One request needs no client library: the request is a fixed string, and the response head is
//! parsed by `httparse` (hyper's parser).

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

/// Most bytes of a response head read before giving up on it.
const MAX_HEAD: usize = 64 * 1024;
/// Bytes of a 5xx body read for the warning.
const BODY_SNIPPET: usize = 4 * 1024;
/// How long to wait for a 5xx body after the head.
const BODY_WAIT: Duration = Duration::from_secs(2);
/// Body lines shown with a 5xx status.
const BODY_LINES: usize = 5;
/// Longest line shown.
const LINE_MAX: usize = 200;

/// The server's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// The status line and, for a 5xx status, the first non-empty lines of the body.
    pub head: Vec<String>,
}

/// Why there is no answer.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// Connecting, writing or reading failed (timeouts included).
    #[error("{0}")]
    Io(#[source] io::Error),
    /// The connection closed before a complete response head.
    #[error("the connection closed without an HTTP response")]
    Closed,
    /// The bytes are not an HTTP/1.x response.
    #[error("the reply is not HTTP: {0}")]
    NotHttp(String),
}

/// Sends `GET path` with `Host: host` and reads the response head (and a 5xx body's start),
/// giving up at `deadline`.
pub fn get(
    stream: &mut (impl Read + Write + ReadTimeout),
    host: &str,
    path: &str,
    deadline: Instant,
) -> Result<Answer, ProbeError> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: pyslip-check\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(ProbeError::Io)?;
    let mut buf = Vec::new();
    let (status, reason, head_len) = loop {
        if read_some(stream, &mut buf, deadline)? == 0 {
            return Err(ProbeError::Closed);
        }
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let status = response.code.unwrap_or_default();
                let reason = response.reason.unwrap_or_default().to_owned();
                break (status, reason, len);
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => {
                return Err(ProbeError::NotHttp(format!(
                    "no end of the response head in {MAX_HEAD} bytes"
                )));
            }
            Err(e) => {
                // Read the rest of the first line (briefly) so the message shows what came.
                let until = deadline.min(Instant::now() + Duration::from_millis(200));
                while buf.len() < 120 && !buf.contains(&b'\n') {
                    match read_some(stream, &mut buf, until) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
                return Err(ProbeError::NotHttp(first_line(&buf, e)));
            }
        }
    };
    let mut head = vec![format!("HTTP {status} {reason}").trim_end().to_owned()];
    if status >= 500 {
        let body_deadline = deadline.min(Instant::now() + BODY_WAIT);
        while buf.len() < head_len + BODY_SNIPPET {
            match read_some(stream, &mut buf, body_deadline) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let body = String::from_utf8_lossy(buf.get(head_len..).unwrap_or_default()).into_owned();
        head.extend(
            body.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .take(BODY_LINES)
                .map(|l| truncate(l, LINE_MAX)),
        );
    }
    Ok(Answer { status, head })
}

/// A stream whose reads can be bounded in time (`TcpStream`).
pub trait ReadTimeout {
    /// Bounds the next reads; `None` means no bound.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl ReadTimeout for std::net::TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        std::net::TcpStream::set_read_timeout(self, timeout)
    }
}

/// Reads what is available into `buf` before `deadline`; 0 at EOF.
fn read_some(
    stream: &mut (impl Read + ReadTimeout),
    buf: &mut Vec<u8>,
    deadline: Instant,
) -> Result<usize, ProbeError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(ProbeError::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            "no response before the check's deadline",
        )));
    }
    stream
        .set_read_timeout(Some(left))
        .map_err(ProbeError::Io)?;
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(ProbeError::Io(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no response before the check's deadline",
                )));
            }
            Err(e) => return Err(ProbeError::Io(e)),
        }
    }
}

fn first_line(buf: &[u8], error: httparse::Error) -> String {
    let text = String::from_utf8_lossy(buf);
    let line = text.lines().next().unwrap_or_default();
    format!("{} ({error})", truncate(line, 80))
}

fn truncate(line: &str, max: usize) -> String {
    match line.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", line.get(..at).unwrap_or_default()),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scripted server side: what the client wrote, and the reply it reads.
    struct Scripted {
        reply: io::Cursor<Vec<u8>>,
        written: Vec<u8>,
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            // One byte at a time, so partial heads are exercised.
            let one = buf.get_mut(..1).unwrap_or_default();
            self.reply.read(one)
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl ReadTimeout for Scripted {
        fn set_read_timeout(&self, _: Option<Duration>) -> io::Result<()> {
            Ok(())
        }
    }

    fn probe(reply: &str) -> (Result<Answer, ProbeError>, String) {
        let mut s = Scripted {
            reply: io::Cursor::new(reply.as_bytes().to_vec()),
            written: vec![],
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        let answer = get(&mut s, "localhost:38017", "/healthz", deadline);
        (answer, String::from_utf8(s.written).unwrap())
    }

    #[test]
    fn ok_answers_give_the_status_line_only() {
        let (answer, request) =
            probe("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok and more body");
        assert!(request.starts_with("GET /healthz HTTP/1.1\r\nHost: localhost:38017\r\n"));
        assert!(request.ends_with("\r\n\r\n"));
        let answer = answer.unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.head, ["HTTP 200 OK"]);
    }

    #[test]
    fn server_errors_bring_the_first_body_lines() {
        let body = "\n<h1>Server Error (500)</h1>\n\nOperationalError: no such table: polls_question\nline 3\nline 4\nline 5\nline 6\n";
        let (answer, _) = probe(&format!("HTTP/1.1 500 Internal Server Error\r\n\r\n{body}"));
        let answer = answer.unwrap();
        assert_eq!(answer.status, 500);
        assert_eq!(answer.head[0], "HTTP 500 Internal Server Error");
        assert_eq!(answer.head[1], "<h1>Server Error (500)</h1>");
        assert_eq!(
            answer.head[2],
            "OperationalError: no such table: polls_question"
        );
        assert_eq!(answer.head.len(), 1 + BODY_LINES);
    }

    #[test]
    fn closed_and_non_http_replies_are_errors() {
        assert!(matches!(probe("").0, Err(ProbeError::Closed)));
        assert!(matches!(probe("HTTP/1.1 200").0, Err(ProbeError::Closed)));
        let (answer, _) = probe("SSH-2.0-OpenSSH_9.2\r\n");
        let err = answer.unwrap_err();
        assert!(err.to_string().contains("SSH-2.0"), "{err}");
    }
}
