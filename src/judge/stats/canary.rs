//! The canary's error rate against the stable version's, tick by tick,
//! with no baseline rate to estimate: a conditional binomial e-process.
//!
//! # The test
//!
//! H0: the canary's error rate `λ_c` is at most `(1 + δ)` times the stable
//! version's `λ_s`, whatever `λ_s` is and however it moves from tick to
//! tick. H1: it is higher.
//!
//! 1. **The split.** In one tick the canary served `r_c` requests with
//!    `e_c` errors, the stable `r_s` with `e_s`. For Poisson counts, given
//!    the tick's errors `n = e_c + e_s`, `e_c ~ Binomial(n, p)` with
//!    `p = λ_c r_c / (λ_c r_c + λ_s r_s)`: the common rate, and anything
//!    that moves both versions' errors together (a slow dependency, a
//!    burst of traffic), cancels. At the null's boundary
//!    `p0 = (1 + δ) r_c / ((1 + δ) r_c + r_s)`.
//! 2. **Composite null.** `p` increases with `λ_c / λ_s`, so every rate
//!    pair of H0 has `p ≤ p0`. Each factor below is the likelihood ratio of
//!    an alternative `q > p0` against `p0`, which increases with `e_c`; a
//!    binomial is stochastically increasing in `p`, so the factor's
//!    expectation under any `p ≤ p0` is at most its expectation under
//!    `p0`, which is 1. The least favourable point, the boundary, is the
//!    only one the test needs.
//! 3. **E-process.** As in [`super::ErrorRateTest`]: a mixture over the
//!    alternatives `ρ_j = (1 + δ)·r_j` of the rate ratio (`r_j` from
//!    [`super::ALTERNATIVES`], 1.5 to 100), each giving this tick's
//!    `q_j = ρ_j r_c / (ρ_j r_c + r_s)`, and over the tick `s` at which the
//!    regression starts, `π_1 = ½`, `π_s = 1/(2(s−1)s)`:
//!    `E_t = Σ_j w_j Σ_{s≤t} π_s Π_{i=s..t} min(c, LR_j(i))`. Every capped
//!    factor has conditional expectation ≤ 1 under H0 (2., and capping an
//!    increasing function keeps it increasing), so `E_t` is a test
//!    supermartingale and Ville's inequality gives `P(sup E_t ≥ 1/α) ≤ α`.
//!    The cap `c` is the one-sample test's: no two ticks can reject.
//! 4. **Ticks without information.** A tick without errors on either side
//!    (every factor is exactly 1), without requests on either side, or
//!    without data is no tick: the e-value stays as it was.
//!
//! The null has no absolute floor (`min_increase`): a difference of rates
//! is not a property of the split. The judge applies the floor beside the
//! test, as a condition on the reading (docs/judge.md).
//!
//! What it assumes: the two versions' errors are Poisson given their rates
//! (binomial at rates of a few percent is close; the split's variance is
//! then a little smaller, which errs on the safe side) and independent
//! given what they share. Overdispersion that is *not* shared, one
//! version's own bursts, is not corrected for: there is no baseline to
//! estimate it from.

use super::{ALTERNATIVES, ErrorRateSettings, StartWeights, ln_add};

/// The sequential test of a canary's error rate against the stable's.
#[derive(Debug, Clone, PartialEq)]
pub struct CanaryTest {
    /// Relative tolerance: H0 allows `(1 + δ)` times the stable rate.
    delta: f64,
    /// ln(1/α): the rejection level of ln E.
    ln_threshold: f64,
    /// ln c: the cap of one tick's factor.
    ln_cap: f64,
    /// Per alternative ratio ρ_j: ln A_j, the start-time mixture of its
    /// products (−∞ before data).
    ln_sums: [f64; ALTERNATIVES.len()],
    /// ln E_t.
    ln_e: f64,
    /// Ticks that carried information so far.
    ticks: u32,
    /// The informative tick (from 1) at which E first reached 1/α.
    crossed_at: Option<u32>,
    /// The canary's requests and errors since the release.
    canary: (f64, f64),
    /// The stable's requests and errors since the release.
    stable: (f64, f64),
}

impl CanaryTest {
    /// A test at `settings.delta` that rejects at `1/settings.alpha` (the
    /// whole α goes to Ville: nothing is estimated). `min_increase` is
    /// not part of the test.
    pub fn new(settings: &ErrorRateSettings) -> CanaryTest {
        let alpha = settings.alpha.clamp(1e-12, 0.5);
        let ln_threshold = (1.0 / alpha).ln();
        let ln_weight = (2.0 * ALTERNATIVES.len() as f64).ln();
        let ln_cap = ((ln_threshold + ln_weight) / 3.0 + 0.01).min(0.49 * ln_threshold);
        let delta = if settings.delta.is_finite() {
            settings.delta.max(0.0)
        } else {
            0.0
        };
        CanaryTest {
            delta,
            ln_threshold,
            ln_cap,
            ln_sums: [f64::NEG_INFINITY; ALTERNATIVES.len()],
            ln_e: 0.0,
            ticks: 0,
            crossed_at: None,
            canary: (0.0, 0.0),
            stable: (0.0, 0.0),
        }
    }

    /// Takes one tick's `(requests, errors)` of the canary and of the
    /// stable; `None` on either side (no data), or numbers that make no
    /// sense, leave the e-value as it is.
    pub fn update(&mut self, canary: Option<(f64, f64)>, stable: Option<(f64, f64)>) {
        let (Some((r_c, e_c)), Some((r_s, e_s))) = (
            canary.filter(super::usable_or_empty),
            stable.filter(super::usable_or_empty),
        ) else {
            return;
        };
        self.canary = (self.canary.0 + r_c, self.canary.1 + e_c);
        self.stable = (self.stable.0 + r_s, self.stable.1 + e_s);
        let n = e_c + e_s;
        if r_c <= 0.0 || r_s <= 0.0 || n <= 0.0 {
            return;
        }
        self.ticks += 1;
        let weights = StartWeights::at(self.ticks);
        let boundary = 1.0 + self.delta;
        let p0 = boundary * r_c / (boundary * r_c + r_s);
        for (ln_sum, r) in self.ln_sums.iter_mut().zip(ALTERNATIVES) {
            let rho = boundary * r;
            let q = rho * r_c / (rho * r_c + r_s);
            let ln_lr = e_c * (q / p0).ln() + e_s * ((1.0 - q) / (1.0 - p0)).ln();
            *ln_sum = ln_add(*ln_sum, weights.ln_start) + ln_lr.min(self.ln_cap);
        }
        let started = self
            .ln_sums
            .iter()
            .fold(f64::NEG_INFINITY, |a, &b| ln_add(a, b))
            - (ALTERNATIVES.len() as f64).ln();
        self.ln_e = ln_add(started, weights.ln_unstarted);
        if self.crossed_at.is_none() && self.ln_e >= self.ln_threshold {
            self.crossed_at = Some(self.ticks);
        }
    }

    /// The current e-value E_t (1 before any informative tick).
    pub fn e_value(&self) -> f64 {
        self.ln_e.exp()
    }

    /// The e-value at which the test rejects: 1/α.
    pub fn threshold(&self) -> f64 {
        self.ln_threshold.exp()
    }

    /// Whether the e-value has reached 1/α on some tick.
    pub fn rejected(&self) -> bool {
        self.crossed_at.is_some()
    }

    /// The informative tick (from 1) at which the test first rejected.
    pub fn rejected_at(&self) -> Option<u32> {
        self.crossed_at
    }

    /// The stable's error rate since the release; `None` before it has
    /// served a request.
    pub fn stable_rate(&self) -> Option<f64> {
        (self.stable.0 > 0.0).then(|| self.stable.1 / self.stable.0)
    }

    /// The canary's error rate since the release.
    pub fn canary_rate(&self) -> Option<f64> {
        (self.canary.0 > 0.0).then(|| self.canary.1 / self.canary.0)
    }

    /// The null's boundary as a rate: `(1 + δ)` times the stable's rate
    /// since the release (0 before it has any).
    pub fn null_rate(&self) -> f64 {
        (1.0 + self.delta) * self.stable_rate().unwrap_or(0.0)
    }
}
