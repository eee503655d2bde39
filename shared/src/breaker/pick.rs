//! Orders a model's deployments for one request: available ones first, the head chosen
//! by weighted power-of-two-choices on latency EWMA, the rest by priority.

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// Opaque index of the deployment in the host's table.
    pub deployment: usize,
    /// Relative share of traffic; 0 means "fallback only".
    pub weight: u32,
    pub latency_ewma_ms: Option<f64>,
    /// The breaker lets a request through now.
    pub available: bool,
}

fn weighted_index(cands: &[&Candidate], r: f64) -> usize {
    let total: u64 = cands.iter().map(|c| c.weight as u64).sum();
    if total == 0 {
        return 0;
    }
    let mut x = (r.clamp(0.0, 0.999_999) * total as f64) as u64;
    for (i, c) in cands.iter().enumerate() {
        if x < c.weight as u64 {
            return i;
        }
        x -= c.weight as u64;
    }
    cands.len() - 1
}

/// Returns deployment indices in the order to try. `r1`, `r2` are uniform randoms in
/// `[0, 1)` from the host. With `balance` false the configured order is kept (ordered
/// fallbacks); unavailable deployments always go last, as a last resort.
pub fn order_candidates(cands: &[Candidate], balance: bool, r1: f64, r2: f64) -> Vec<usize> {
    let (avail, unavail): (Vec<&Candidate>, Vec<&Candidate>) = cands.iter().partition(|c| c.available);
    let mut out: Vec<usize> = Vec::with_capacity(cands.len());
    let weighted: Vec<&Candidate> = avail.iter().copied().filter(|c| c.weight > 0).collect();
    if balance && weighted.len() > 1 {
        let a = weighted_index(&weighted, r1);
        let b = weighted_index(&weighted, r2);
        let lat = |c: &Candidate| c.latency_ewma_ms.unwrap_or(0.0);
        let head = if lat(weighted[b]) < lat(weighted[a]) { weighted[b] } else { weighted[a] };
        out.push(head.deployment);
    }
    for c in avail.iter().chain(unavail.iter()) {
        if !out.contains(&c.deployment) {
            out.push(c.deployment);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(d: usize, w: u32, lat: Option<f64>, ok: bool) -> Candidate {
        Candidate { deployment: d, weight: w, latency_ewma_ms: lat, available: ok }
    }

    #[test]
    fn ordered_keeps_priority_and_demotes_open_breakers() {
        let v = [c(0, 1, None, false), c(1, 1, None, true), c(2, 0, None, true)];
        assert_eq!(order_candidates(&v, false, 0.0, 0.0), vec![1, 2, 0]);
    }

    #[test]
    fn p2c_prefers_the_faster_of_two() {
        let v = [c(0, 1, Some(100.0), true), c(1, 1, Some(10.0), true)];
        assert_eq!(order_candidates(&v, true, 0.1, 0.9)[0], 1);
        assert_eq!(order_candidates(&v, true, 0.9, 0.1)[0], 1);
        assert_eq!(order_candidates(&v, true, 0.1, 0.1)[0], 0, "same pick twice: no choice");
    }

    #[test]
    fn weights_shape_the_draw() {
        let v = [c(0, 9, None, true), c(1, 1, None, true)];
        let mut first0 = 0;
        for i in 0..100 {
            let r = i as f64 / 100.0;
            if order_candidates(&v, true, r, r)[0] == 0 {
                first0 += 1;
            }
        }
        assert_eq!(first0, 90);
    }
}
