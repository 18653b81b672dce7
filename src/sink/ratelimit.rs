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
        self.admit_at(Instant::now())
    }

    /// `admit` at the time `now`, so the window's turn can be tested.
    fn admit_at(&mut self, now: Instant) -> bool {
        if self.max == 0 {
            return true;
        }
        if now.saturating_duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
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

    #[test]
    fn each_second_admits_the_limit_afresh_and_drops_keep_counting() {
        let mut r = RateLimit::new(2);
        let t0 = r.window;
        let at = |ms| t0 + Duration::from_millis(ms);
        assert!(r.admit_at(at(0)) && r.admit_at(at(10)));
        assert!(!r.admit_at(at(999)), "still the first second");
        assert!(r.admit_at(at(1000)) && r.admit_at(at(1500)));
        assert!(!r.admit_at(at(1999)));
        // The next window starts at its first event, not on a fixed tick.
        assert!(r.admit_at(at(2100)));
        assert_eq!(r.dropped, 2);
    }
}
