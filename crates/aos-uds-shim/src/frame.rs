//! Newline-delimited frames with a size limit. [`FrameBuffer`] is the pure
//! state machine (fed bytes, yields frames; what the fuzz target drives);
//! [`FrameReader`] reads it from a socket. Memory stays bounded by the limit
//! whatever the peer sends: an over-long line is reported once, as soon as
//! it passes the limit, and its remainder is discarded up to its newline.

use tokio::io::{AsyncRead, AsyncReadExt};

/// One item out of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete line, without its `\n` (and without a `\r` before it).
    Line(Vec<u8>),
    /// A line passed the size limit; its bytes are being dropped.
    TooLong,
}

/// Splits bytes into lines of at most `max` bytes.
#[derive(Debug)]
pub struct FrameBuffer {
    buf: Vec<u8>,
    /// Bytes of `buf` already known to hold no newline.
    scanned: usize,
    /// Inside an over-long line: drop bytes up to the next newline.
    discarding: bool,
    max: usize,
}

impl FrameBuffer {
    /// An empty buffer for lines of at most `max` bytes.
    pub fn new(max: usize) -> Self {
        FrameBuffer {
            buf: Vec::new(),
            scanned: 0,
            discarding: false,
            max,
        }
    }

    /// Adds bytes read from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held (never much more than the limit plus one read).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next frame, if the bytes pushed so far complete one.
    pub fn next_frame(&mut self) -> Option<Frame> {
        loop {
            let Some(pos) = self.buf[self.scanned..].iter().position(|b| *b == b'\n') else {
                self.scanned = self.buf.len();
                if self.buf.len() > self.max {
                    self.buf.clear();
                    self.scanned = 0;
                    if !self.discarding {
                        self.discarding = true;
                        return Some(Frame::TooLong);
                    }
                }
                return None;
            };
            let end = self.scanned + pos;
            let mut line: Vec<u8> = self.buf.drain(..=end).collect();
            self.scanned = 0;
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if std::mem::take(&mut self.discarding) {
                continue;
            }
            if line.len() > self.max {
                return Some(Frame::TooLong);
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(Frame::Line(line));
        }
    }
}

/// Reads frames from a byte stream.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    frames: FrameBuffer,
    chunk: Vec<u8>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Frames of at most `max` bytes from `inner`.
    pub fn new(inner: R, max: usize) -> Self {
        FrameReader {
            inner,
            frames: FrameBuffer::new(max),
            chunk: vec![0; 64 * 1024],
        }
    }

    /// The next frame; `None` at end of stream (a last line without a
    /// newline is dropped, as the protocol ends every message with one).
    pub async fn next(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            if let Some(f) = self.frames.next_frame() {
                return Ok(Some(f));
            }
            let n = self.inner.read(&mut self.chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            self.frames.push(&self.chunk[..n]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(fb: &mut FrameBuffer) -> Vec<Frame> {
        std::iter::from_fn(|| fb.next_frame()).collect()
    }

    #[test]
    fn splits_lines_across_pushes() {
        let mut fb = FrameBuffer::new(16);
        fb.push(b"{\"a\":1}\n{\"b\"");
        assert_eq!(all(&mut fb), vec![Frame::Line(b"{\"a\":1}".to_vec())]);
        fb.push(b":2}\r\n\n  \n");
        assert_eq!(all(&mut fb), vec![Frame::Line(b"{\"b\":2}".to_vec())]);
        assert_eq!(fb.buffered(), 0);
    }

    #[test]
    fn an_overlong_line_is_reported_once_and_skipped() {
        let mut fb = FrameBuffer::new(8);
        fb.push(b"0123456789");
        assert_eq!(all(&mut fb), vec![Frame::TooLong]);
        assert_eq!(fb.buffered(), 0);
        fb.push(b"more bytes of the same line");
        assert_eq!(all(&mut fb), vec![]);
        fb.push(b"end\nok\n");
        assert_eq!(all(&mut fb), vec![Frame::Line(b"ok".to_vec())]);
        // Over the limit but complete in one push: reported, not returned.
        fb.push(b"0123456789\nok2\n");
        assert_eq!(
            all(&mut fb),
            vec![Frame::TooLong, Frame::Line(b"ok2".to_vec())]
        );
    }

    /// The fuzz target's invariants on random input (the fuzzer explores
    /// further: `fuzz/`): frames never exceed the limit or hold a newline,
    /// memory stays bounded, and the lines that fit are exactly the input's.
    #[test]
    fn random_input_keeps_the_invariants() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..2_000 {
            let max = rng.random_range(1..40);
            let chunk = rng.random_range(1..50);
            let len = rng.random_range(0..400);
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.random_bool(0.1) {
                        b'\n'
                    } else {
                        rng.random_range(b'a'..=b'e')
                    }
                })
                .collect();
            let mut fb = FrameBuffer::new(max);
            let mut got = Vec::new();
            for piece in data.chunks(chunk) {
                fb.push(piece);
                while let Some(f) = fb.next_frame() {
                    got.push(f);
                }
                assert!(fb.buffered() <= max + chunk);
            }
            let complete = data
                .iter()
                .rposition(|b| *b == b'\n')
                .map_or(&data[..0], |p| &data[..p]);
            let want: Vec<Frame> = complete
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    if l.len() > max {
                        Frame::TooLong
                    } else {
                        Frame::Line(l.to_vec())
                    }
                })
                .collect();
            // An over-long line is reported once, possibly before its end.
            let lines = |v: &[Frame]| {
                v.iter()
                    .filter(|f| matches!(f, Frame::Line(_)))
                    .cloned()
                    .collect::<Vec<_>>()
            };
            assert_eq!(
                lines(&got),
                lines(&want),
                "max {max} chunk {chunk} data {data:?}"
            );
        }
    }

    #[tokio::test]
    async fn reader_stops_at_end_of_stream() {
        let data: &[u8] = b"one\ntwo\nthree-without-newline";
        let mut r = FrameReader::new(data, 64);
        assert_eq!(
            r.next().await.ok().flatten(),
            Some(Frame::Line(b"one".to_vec()))
        );
        assert_eq!(
            r.next().await.ok().flatten(),
            Some(Frame::Line(b"two".to_vec()))
        );
        assert_eq!(r.next().await.ok().flatten(), None);
    }
}
