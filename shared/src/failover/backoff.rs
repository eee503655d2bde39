//! Exponential backoff with "equal jitter": half the window fixed, half random.

/// Delay before retry number `retry` (1 = first retry). `jitter` is a uniform random
/// number in `[0, 1)` supplied by the host, so the core stays deterministic.
pub fn backoff_ms(retry: u32, base_ms: u64, max_ms: u64, jitter: f64) -> u64 {
    let exp = base_ms.saturating_mul(1u64 << retry.saturating_sub(1).min(20)).min(max_ms);
    let half = exp / 2;
    half + (half as f64 * jitter.clamp(0.0, 1.0)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        assert_eq!(backoff_ms(1, 100, 10_000, 0.0), 50);
        assert_eq!(backoff_ms(1, 100, 10_000, 0.999), 99);
        assert_eq!(backoff_ms(3, 100, 10_000, 0.0), 200);
        assert_eq!(backoff_ms(30, 100, 1_000, 1.0), 1_000);
    }
}
