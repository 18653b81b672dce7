//! The signed-stream verifier on any text: a verdict, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = bee_trace::sink::evidence::verify(text, b"0123456789abcdef0123456789abcdef");
    }
});
