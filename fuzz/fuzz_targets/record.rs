//! The record reader (replay's input) on any bytes, then the built-in rules
//! over whatever it accepted.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(events) = bee_trace::sink::record::read_from(data, "fuzz") {
        if let Ok(set) = bee_trace::rules::load(None) {
            let mut engine = bee_trace::rules::Engine::new(set);
            for ev in events.iter().take(256) {
                let _ = engine.push(ev);
            }
        }
    }
});
