//! The output rate limit (performance.max_events_per_second): what it drops
//! is counted, never silent.

use std::time::{Duration, Instant};

/// performance.max_events_per_second, counted per wall-clock second.
pub struct RateLimit {
    max: u64,
    window: Instant,
    used: u64,
    pub dropped: u64,
}

impl RateLimit {
    pub fn new(max: u64) -> RateLimit {
        RateLimit {
            max,
            window: Instant::now(),
            used: 0,
            dropped: 0,
        }
    }

    pub fn admit(&mut self) -> bool {
        if self.max == 0 {
            return true;
        }
        if self.window.elapsed() >= Duration::from_secs(1) {
            self.window = Instant::now();
            self.used = 0;
        }
        if self.used < self.max {
            self.used += 1;
            true
        } else {
            self.dropped += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_limit_each_event_is_dropped_and_counted() {
        let mut r = RateLimit::new(2);
        let admitted: Vec<bool> = (0..5).map(|_| r.admit()).collect();
        assert_eq!(admitted, [true, true, false, false, false]);
        assert_eq!(r.dropped, 3);
        let mut none = RateLimit::new(0);
        assert!((0..1000).all(|_| none.admit()));
        assert_eq!(none.dropped, 0);
    }
}
