//! The rule compiler on any rule file: an error located in the file, or a
//! rule set, never a panic or a stack overflow.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let src = bee_trace::rules::Source {
            name: "fuzz.yml".into(),
            text: text.into(),
        };
        let _ = bee_trace::rules::compile(&[src]);
    }
});
