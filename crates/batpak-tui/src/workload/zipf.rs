//! The Zipf law of events over entities: a sampler for the generator and the fit the
//! profile uses.

use super::Rng;

/// Draws ranks `1..=n` with probability proportional to `rank^-s` in constant time and
/// memory, by rejection-inversion (W. Hörmann, G. Derflinger, "Rejection-inversion to
/// generate variates from monotone discrete distributions", ACM TOMACS 6(3), 1996).
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    s: f64,
    h_x1: f64,
    h_n: f64,
    cut: f64,
}

/// `ln(1 + x) / x`, continuous at 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// `(e^x - 1) / x`, continuous at 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x))
    }
}

impl Zipf {
    /// A sampler over `1..=n` (at least 1) with exponent `s` (at least 0).
    pub fn new(n: u64, s: f64) -> Self {
        let s = if s.is_finite() { s.max(0.0) } else { 0.0 };
        let mut z = Self {
            n: n.max(1) as f64,
            s,
            h_x1: 0.0,
            h_n: 0.0,
            cut: 0.0,
        };
        z.h_x1 = z.h_integral(1.5) - 1.0;
        z.h_n = z.h_integral(z.n + 0.5);
        z.cut = 2.0 - z.h_integral_inverse(z.h_integral(2.5) - z.h(2.0));
        z
    }

    fn h(&self, x: f64) -> f64 {
        (-self.s * x.ln()).exp()
    }

    fn h_integral(&self, x: f64) -> f64 {
        let l = x.ln();
        helper2((1.0 - self.s) * l) * l
    }

    fn h_integral_inverse(&self, x: f64) -> f64 {
        let t = (x * (1.0 - self.s)).max(-1.0);
        (helper1(t) * x).exp()
    }

    /// A rank in `1..=n`.
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        loop {
            let u01 = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let u = self.h_n + u01 * (self.h_x1 - self.h_n);
            let x = self.h_integral_inverse(u);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.cut || u >= self.h_integral(k + 0.5) - self.h(k) {
                return k as u64;
            }
        }
    }
}

/// How a skew was fitted (see [`fit`]).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Fit {
    /// The Zipf exponent.
    pub s: f64,
    /// Ranks (busiest entities) the fit used: those with at least [`MIN_FIT_COUNT`] events.
    pub ranks_used: u64,
    /// Index of dispersion of the counts (variance / mean; about 1 for uniform arrivals).
    pub dispersion: f64,
    /// `true` when the counts were as even as uniform arrivals make them, so `s` is 0.
    pub uniform: bool,
}

/// Ranks with fewer events than this are left out of the fit: the order of entities with a
/// handful of events is mostly chance, and entities that drew none are not in the log.
pub const MIN_FIT_COUNT: u64 = 10;

/// The mean of `ln r` under Zipf(`s`) over ranks `1..=k`.
fn mean_log_rank(s: f64, k: u64) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for r in 1..=k {
        let l = (r as f64).ln();
        let w = (-s * l).exp();
        num += w * l;
        den += w;
    }
    num / den
}

/// Fits a Zipf exponent to events per entity (`counts`, any order; zeros are ignored).
///
/// First a dispersion test: if the counts' variance over their mean is within three
/// standard errors of 1 (what uniform, Poisson arrivals give), the skew is 0. Otherwise the
/// counts are sorted (busiest first = rank 1), ranks with fewer than [`MIN_FIT_COUNT`]
/// events are dropped, and `s` is the maximum-likelihood exponent of a Zipf law truncated
/// to the ranks kept: the `s` for which the mean of `ln rank` under the law equals the
/// observed event-weighted mean of `ln rank` (found by bisection on 0..=10; the mean falls
/// as `s` grows). Fewer than two ranks kept: 0.
pub fn fit(counts: &[u64]) -> Fit {
    let mut c: Vec<u64> = counts.iter().copied().filter(|&n| n > 0).collect();
    c.sort_unstable_by(|a, b| b.cmp(a));
    let n = c.len() as f64;
    let mean = c.iter().sum::<u64>() as f64 / n.max(1.0);
    let var = if c.len() > 1 {
        c.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    let dispersion = if mean > 0.0 { var / mean } else { 0.0 };
    let uniform = c.len() < 2 || dispersion <= 1.0 + 3.0 * (2.0 / (n - 1.0).max(1.0)).sqrt();
    let kept: Vec<u64> = c.iter().copied().filter(|&x| x >= MIN_FIT_COUNT).collect();
    let k = kept.len() as u64;
    if uniform || k < 2 {
        return Fit {
            s: 0.0,
            ranks_used: k,
            dispersion,
            uniform: true,
        };
    }
    let total: f64 = kept.iter().sum::<u64>() as f64;
    let observed = kept
        .iter()
        .enumerate()
        .map(|(i, &x)| x as f64 * ((i + 1) as f64).ln())
        .sum::<f64>()
        / total;
    let (mut lo, mut hi) = (0.0f64, 10.0f64);
    for _ in 0..50 {
        let mid = 0.5 * (lo + hi);
        if mean_log_rank(mid, k) > observed {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Fit {
        s: 0.5 * (lo + hi),
        ranks_used: k,
        dispersion,
        uniform: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(n: u64, s: f64, draws: u64) -> Vec<u64> {
        let z = Zipf::new(n, s);
        let mut rng = Rng::new(7);
        let mut c = vec![0u64; n as usize];
        for _ in 0..draws {
            c[(z.sample(&mut rng) - 1) as usize] += 1;
        }
        c
    }

    #[test]
    fn the_sampler_gives_rank_one_its_zipf_share() {
        let c = counts(100, 1.0, 200_000);
        let h: f64 = (1..=100).map(|r| 1.0 / r as f64).sum();
        let share = c[0] as f64 / 200_000.0;
        assert!((share - 1.0 / h).abs() < 0.01, "{share} vs {}", 1.0 / h);
        assert!(c[0] > c[9] && c[9] > c[99], "{c:?}");
    }

    #[test]
    fn the_fit_recovers_the_exponent_it_was_drawn_with() {
        for s in [0.6, 1.0, 1.3] {
            let f = fit(&counts(1000, s, 50_000));
            assert!((f.s - s).abs() < 0.05 * s, "{s}: {f:?}");
        }
    }

    #[test]
    fn uniform_counts_fit_no_skew() {
        let f = fit(&counts(1000, 0.0, 50_000));
        assert!(f.uniform && f.s == 0.0, "{f:?}");
    }
}
