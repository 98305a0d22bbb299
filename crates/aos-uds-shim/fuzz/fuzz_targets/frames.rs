//! Fuzzes the frame reader and the message parser with whatever a service
//! could write to its socket, cut into reads of every size:
//! `cargo +nightly fuzz run frames` from `crates/aos-uds-shim`.

#![no_main]

use aos_uds_shim::frame::{Frame, FrameBuffer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let max = 1 + usize::from(first % 64);
    let chunk = 1 + usize::from(first / 64) * 7;
    let mut frames = FrameBuffer::new(max);
    for piece in rest.chunks(chunk) {
        frames.push(piece);
        while let Some(f) = frames.next_frame() {
            if let Frame::Line(line) = f {
                assert!(line.len() <= max);
                assert!(!line.contains(&b'\n'));
                let _ = aos_uds_shim::protocol::parse(&line);
            }
        }
        assert!(frames.buffered() <= max + chunk);
    }
});
