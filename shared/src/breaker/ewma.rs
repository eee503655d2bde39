//! Exponentially weighted moving average of a latency.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ewma {
    alpha: f64,
    value: Option<f64>,
}

impl Ewma {
    /// `alpha` in (0, 1]: the weight of each new sample.
    pub fn new(alpha: f64) -> Self {
        Ewma { alpha: alpha.clamp(f64::EPSILON, 1.0), value: None }
    }

    pub fn observe(&mut self, sample: f64) {
        self.value = Some(match self.value {
            None => sample,
            Some(v) => v + self.alpha * (sample - v),
        });
    }

    /// The average, or `None` before any sample (callers treat unknown as best, so new
    /// deployments get traffic).
    pub fn value(&self) -> Option<f64> {
        self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converges() {
        let mut e = Ewma::new(0.5);
        assert_eq!(e.value(), None);
        e.observe(100.0);
        e.observe(0.0);
        assert_eq!(e.value(), Some(50.0));
        for _ in 0..50 {
            e.observe(10.0);
        }
        assert!((e.value().unwrap() - 10.0).abs() < 1e-6);
    }
}
