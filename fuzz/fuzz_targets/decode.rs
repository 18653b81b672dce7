//! The ring-record decoder on any sample: a record or a counted error,
//! never a panic or a read past the sample.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = bee_trace::abi::decode(data) {
        if let bee_trace::abi::Raw::File(f) = &raw {
            let _ = bee_trace::abi::file_event_path(f);
            let _ = bee_trace::abi::file_event_old_path(f);
        }
    }
});
