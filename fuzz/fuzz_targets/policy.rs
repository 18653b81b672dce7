//! The policy loader on any text: an error or a policy, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(p) = bee_trace::policy::Policy::from_yaml(text, std::path::Path::new("fuzz.yml"))
        {
            // What loads must also compile into the kernel's filter.
            let _ = p.kernel_filter();
        }
    }
});
