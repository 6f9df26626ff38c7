//! Anytime-valid sequential tests: statistics that may be looked at on
//! every tick without inflating false alarms. Pure arithmetic; no I/O.
//!
//! # The error-rate test
//!
//! H0: the post-release error rate is at most `p0`, where
//! `p0 = max((1 + δ) · p_hi, p_hi + min_increase)` and `p_hi` is an upper
//! confidence bound on the baseline rate. H1: it is higher.
//!
//! 1. **Baseline.** From the baseline ticks' `(requests, errors)`: the rate
//!    `p̂ = Σk / Σn` and the dispersion factor `φ = max(1, X² / (m − 1))`,
//!    the Pearson statistic over the `m` ticks (quasi-binomial). Real error
//!    counts vary more from tick to tick than a binomial does (bursts,
//!    retries, a slow dependency); every count is divided by `φ` ("deflated"),
//!    which gives a binomial-like variance again. `p_hi` is the
//!    `1 − α/2` quantile of the Jeffreys posterior `Beta(k/φ + ½, (n−k)/φ + ½)`,
//!    so that a short or noisy baseline makes the test more cautious rather
//!    than trigger-happy.
//! 2. **E-process.** A mixture, in the spirit of the conjugate mixture
//!    martingale of Lindon & Malek (NeurIPS 2022, "Anytime-valid inference
//!    for multinomial count data"), over a fixed grid of alternative rates
//!    `q_j = r_j · p0` (`r_j` from 1.5 to 100, [`ALTERNATIVES`]) and over the
//!    tick `s` at which the regression starts:
//!    `E_t = Σ_j w_j Σ_{s ≤ t} π_s Π_{i=s..t} f_j(i)`, with
//!    `f_j(i) = min(c, (q_j/p0)^k · ((1−q_j)/(1−p0))^(n−k))` on deflated
//!    counts, `w_j = 1/J` and `π_1 = ½`, `π_s = 1/(2(s−1)s)` after that
//!    (the weights sum to at most 1). For any true rate `p ≤ p0`, each
//!    factor has conditional expectation ≤ 1 (the binomial likelihood ratio
//!    with `q ≥ p0` is increasing in `k`, the binomial is stochastically
//!    increasing in `p`, and capping keeps both), so every product is a
//!    nonnegative supermartingale and so is their fixed-weight mixture. By
//!    Ville's inequality `P(sup_t E_t ≥ 1/α_e) ≤ α_e`: the test rejects
//!    when `E_t ≥ 1/α_e`, on any tick, as often as it is looked at.
//!    The per-alternative sums follow `A_j ← (A_j + π_t) · f_j(t)`: O(J)
//!    per tick whatever the history, one `exp` each (kept linear on a
//!    common scale that moves when they drift far from 1).
//!    - Fixed alternatives make the test **monotone**: more errors on any
//!      tick never give a smaller e-value, then or later (a plug-in
//!      estimate of the rate would bet harder after bad ticks and could lose
//!      more on the next one).
//!    - Later starts let a regression that begins after a long good stretch
//!      be found without first paying back what the good ticks cost.
//! 3. **Spikes.** The cap `c` is set so that the strongest component
//!    (start 1, weight `1/(2J)`) can reach `1/α_e` in three ticks, and so
//!    that `c² < 1/α_e`: no one or two ticks can reject on their own,
//!    however bad. A 1–2 tick spike is followed by normal ticks that give
//!    factors below 1, and the e-value decays.
//! 4. **α.** The check's α (default 0.01) is split: α/2 for the baseline
//!    bound and α_e = α/2 for Ville, so the false-alarm rate of the whole
//!    check is at most α (union bound), given the quasi-binomial model.
//!
//! A canary beside a stable version needs no baseline rate at all:
//! [`CanaryTest`] (`stats/canary.rs`) splits each tick's errors by the two
//! versions' requests.
//!
//! This is the *union-bound* test. [`ProfiledTest`] (`stats/profile.rs`)
//! puts the baseline's uncertainty inside the e-value instead, with one
//! such e-process per reading of the baseline rate, and is what a count
//! metric with a baseline of four blocks or more uses.
//!
//! Missing ticks contribute nothing (`f = 1`); low traffic gives factors
//! close to 1: both hold rather than decide.

mod canary;
mod profile;

pub use canary::CanaryTest;
pub use profile::{MIN_BLOCKS, PRIOR_SHARE, ProfiledTest};
use statrs::distribution::{Beta, ContinuousCDF};

/// Settings of the error-rate test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorRateSettings {
    /// Relative tolerance: H0 allows up to `(1 + δ)` times the baseline.
    pub delta: f64,
    /// Absolute tolerance: H0 allows at least `baseline + min_increase`, so
    /// that 0.01% → 0.02% errors is not a regression worth a rollback.
    pub min_increase: f64,
    /// The check's false-alarm budget over the whole bake window.
    pub alpha: f64,
}

impl Default for ErrorRateSettings {
    /// δ = 0.25, min_increase = 0.001 (0.1 points), α = 0.01: the test's own
    /// defaults, for tests and the bench's references; a metric's test takes
    /// `MetricConfig::min_increase` (0.02 points by default).
    fn default() -> ErrorRateSettings {
        ErrorRateSettings {
            delta: 0.25,
            min_increase: 0.001,
            alpha: 0.01,
        }
    }
}

/// The alternatives the e-process bets on, as multiples of `p0`.
pub const ALTERNATIVES: [f64; 7] = [1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0];

/// What the baseline ticks say about the error rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorBaseline {
    /// Σ errors / Σ requests.
    pub rate: f64,
    /// Upper confidence bound on the rate (level 1 − α/2, deflated counts).
    pub upper: f64,
    /// Dispersion factor φ ≥ 1 every count is divided by.
    pub dispersion: f64,
    /// Baseline requests.
    pub requests: f64,
}

/// Ticks the dispersion factor needs; with fewer, φ = 1.
pub const MIN_DISPERSION_TICKS: usize = 3;

impl ErrorBaseline {
    /// The baseline from `(requests, errors)` per tick (ticks without data
    /// left out); `None` when it has no requests.
    pub fn from_ticks(ticks: &[(f64, f64)], alpha: f64) -> Option<ErrorBaseline> {
        let Pooled {
            requests: n,
            errors: k,
            rate,
            dispersion,
            ..
        } = Pooled::new(ticks)?;
        let (a, b) = (k / dispersion + 0.5, (n - k) / dispersion + 0.5);
        let upper = Beta::new(a, b)
            .map(|beta| beta.inverse_cdf(1.0 - alpha / 2.0))
            .unwrap_or(1.0);
        Some(ErrorBaseline {
            rate,
            upper: if upper.is_finite() { upper } else { 1.0 },
            dispersion,
            requests: n,
        })
    }
}

/// A baseline's usable `(requests, errors)` blocks pooled: what both the
/// union-bound and the profiled test start from.
struct Pooled {
    /// The usable blocks, in order.
    blocks: Vec<(f64, f64)>,
    /// Σ requests.
    requests: f64,
    /// Σ errors.
    errors: f64,
    /// Σ errors / Σ requests.
    rate: f64,
    /// Dispersion factor φ ≥ 1 around that rate.
    dispersion: f64,
}

impl Pooled {
    /// `blocks` without those that cannot be counted, pooled; `None` when
    /// none is left.
    fn new(blocks: &[(f64, f64)]) -> Option<Pooled> {
        let blocks: Vec<(f64, f64)> = blocks.iter().copied().filter(usable).collect();
        let requests: f64 = blocks.iter().map(|b| b.0).sum();
        let errors: f64 = blocks.iter().map(|b| b.1).sum();
        if requests <= 0.0 {
            return None;
        }
        let rate = errors / requests;
        let dispersion = dispersion(&blocks, rate);
        Some(Pooled {
            blocks,
            requests,
            errors,
            rate,
            dispersion,
        })
    }
}

/// Whether `(requests, errors)` can be counted: finite, some requests, and
/// no more errors than requests.
fn usable(&(n, k): &(f64, f64)) -> bool {
    n.is_finite() && k.is_finite() && n > 0.0 && (0.0..=n).contains(&k)
}

/// Whether `(requests, errors)` can be counted, a tick without requests
/// included: finite, not negative, no more errors than requests.
fn usable_or_empty(&(n, k): &(f64, f64)) -> bool {
    n.is_finite() && k.is_finite() && n >= 0.0 && (0.0..=n).contains(&k)
}

/// Pearson's X² / (m − 1) around `rate`, at least 1; 1 with too few ticks
/// or a rate of 0 or 1 (no variance to compare with).
fn dispersion(ticks: &[(f64, f64)], rate: f64) -> f64 {
    if ticks.len() < MIN_DISPERSION_TICKS || rate <= 0.0 || rate >= 1.0 {
        return 1.0;
    }
    let x2: f64 = ticks
        .iter()
        .map(|&(n, k)| (k - n * rate).powi(2) / (n * rate * (1.0 - rate)))
        .sum();
    (x2 / (ticks.len() - 1) as f64).max(1.0)
}

/// The sequential test of one release's error rate against its baseline.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorRateTest {
    /// The null's boundary rate.
    p0: f64,
    /// Dispersion factor from the baseline.
    dispersion: f64,
    /// ln(1/α_e): the rejection level of ln E.
    ln_threshold: f64,
    /// ln c: the cap of one tick's factor.
    ln_cap: f64,
    /// The distinct alternatives (fewer than [`ALTERNATIVES`] where
    /// `r · p0` reaches 0.99); the arrays below hold them first.
    alternatives: usize,
    /// Per alternative. Arrays rather than vectors: a profiled test holds
    /// some 30 of these tests a check, and a thousand targets' state is
    /// read every tick; inline, it is read in one sweep.
    bets: [Bet; ALTERNATIVES.len()],
    /// Per alternative: A_j, the start-time mixture of its products, as
    /// `A_j · e^-scale` (linear, so that a tick costs one `exp` per
    /// alternative rather than a log-add).
    sums: [f64; ALTERNATIVES.len()],
    /// ln of the common scale of `sums`, moved when they drift far from 1.
    scale: f64,
    /// `e^-scale`, kept with it (a start's weight on the sums' scale
    /// without an `exp` a tick).
    unscale: f64,
    /// ln J: each alternative's weight is 1/J.
    ln_alternatives: f64,
    /// `Σ_j A_j` on the sums' scale after the last tick (for the part of
    /// E_t that has started betting, `Σ_j w_j A_j`).
    started: f64,
    /// ln E_t.
    ln_e: f64,
    /// Ticks with data so far.
    ticks: u32,
    /// The tick (counting ticks with data, from 1) at which E first crossed.
    crossed_at: Option<u32>,
    /// Undiscounted post-release errors and requests (not deflated), for the
    /// observed rate.
    total: (f64, f64),
}

/// One alternative `q` of an [`ErrorRateTest`].
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Bet {
    /// ln(q/p0): a bad event's log-likelihood ratio.
    up: f64,
    /// ln((1−q)/(1−p0)): a good event's.
    down: f64,
    /// The capped factor of one good event (a value metric's tick, whose
    /// events are one a tick), computed once.
    good: f64,
    /// The same for one bad event.
    bad: f64,
}

/// How far the linear sums of [`ErrorRateTest`] may drift from 1 before
/// they are rescaled: far from overflow, however large one tick's factors.
const RESCALE: f64 = 1e100;

/// ln(e^a + e^b), exact for -∞. Below `e^-LN_NEGLIGIBLE` of the larger
/// term, the smaller one changes nothing in an f64 (2^-53 ≈ e^-36.7), and
/// is not computed.
fn ln_add(a: f64, b: f64) -> f64 {
    const LN_NEGLIGIBLE: f64 = 37.0;
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    if lo < hi - LN_NEGLIGIBLE {
        hi
    } else {
        hi + (lo - hi).exp().ln_1p()
    }
}

/// The start-time mixture's weights at tick `t` (from 1).
struct StartWeights {
    /// π_t: a regression starting at tick `t`.
    start: f64,
    /// ln π_t.
    ln_start: f64,
    /// ln Σ_{s>t} π_s = ln 1/(2t): starts still to come, which have bet
    /// nothing yet and count at 1 (so that E = 1 before any data).
    ln_unstarted: f64,
}

impl StartWeights {
    fn at(t: u32) -> StartWeights {
        let t = f64::from(t.max(1));
        let start = if t <= 1.0 {
            0.5
        } else {
            1.0 / (2.0 * (t - 1.0) * t)
        };
        StartWeights {
            start,
            ln_start: start.ln(),
            ln_unstarted: -(2.0 * t).ln(),
        }
    }
}

impl ErrorRateTest {
    /// A test of the release against `baseline`.
    pub fn new(baseline: &ErrorBaseline, settings: &ErrorRateSettings) -> ErrorRateTest {
        let p0 = (1.0 + settings.delta) * baseline.upper;
        let p0 = p0.max(baseline.upper + settings.min_increase);
        ErrorRateTest::against(p0, baseline.dispersion, settings)
    }

    /// A test of "the rate is at most `p0`" with a known `dispersion`: for a
    /// check without a baseline, whose null is its mildest threshold.
    /// Half of `settings.alpha` goes to Ville's bound, as in
    /// [`ErrorRateTest::new`] (the other half is the baseline's).
    pub fn against(p0: f64, dispersion: f64, settings: &ErrorRateSettings) -> ErrorRateTest {
        let alpha_e = (settings.alpha / 2.0).clamp(1e-12, 0.5);
        ErrorRateTest::at_level(p0, dispersion, (1.0 / alpha_e).ln())
    }

    /// A test of "the rate is at most `p0`" that rejects when ln E reaches
    /// `ln_threshold`.
    pub(super) fn at_level(p0: f64, dispersion: f64, ln_threshold: f64) -> ErrorRateTest {
        let p0 = if p0.is_finite() { p0 } else { 0.99 };
        let p0 = p0.clamp(1e-9, 0.99);
        let mut qs: Vec<f64> = ALTERNATIVES.iter().map(|r| (r * p0).min(0.99)).collect();
        qs.dedup_by(|a, b| (*a - *b).abs() < 1e-12);
        let alternatives = qs.len();
        // The strongest component's weight is 1/(2J): reaching the
        // threshold in three capped ticks needs 3 ln c ≥ L + ln 2J; two
        // ticks must never do it, whatever the weights: 2 ln c < L.
        let ln_weight = (2.0 * alternatives as f64).ln();
        let ln_cap = ((ln_threshold + ln_weight) / 3.0 + 0.01).min(0.49 * ln_threshold);
        let dispersion = if dispersion.is_finite() {
            dispersion.max(1.0)
        } else {
            1.0
        };
        let mut bets = [Bet::default(); ALTERNATIVES.len()];
        for (bet, q) in bets.iter_mut().zip(&qs) {
            let (up, down) = ((q / p0).ln(), ((1.0 - q) / (1.0 - p0)).ln());
            let factor = |ln: f64| (ln / dispersion).min(ln_cap).exp();
            *bet = Bet {
                up,
                down,
                good: factor(down),
                bad: factor(up),
            };
        }
        ErrorRateTest {
            p0,
            dispersion,
            ln_threshold,
            ln_cap,
            alternatives,
            sums: [0.0; ALTERNATIVES.len()],
            scale: 0.0,
            unscale: 1.0,
            ln_alternatives: (alternatives as f64).ln(),
            started: 0.0,
            bets,
            ln_e: 0.0,
            ticks: 0,
            crossed_at: None,
            total: (0.0, 0.0),
        }
    }

    /// Takes one tick's `(requests, errors)`; `None` (no data, or numbers
    /// that make no sense) leaves the e-value as it is.
    pub fn update(&mut self, counts: Option<(f64, f64)>) {
        let Some((n, k)) = counts.filter(usable) else {
            return;
        };
        let weights = StartWeights::at(self.ticks + 1);
        self.take(n, k, &weights);
        self.ln_e = ln_add(self.ln_started(), weights.ln_unstarted);
        if self.crossed_at.is_none() && self.ln_e >= self.ln_threshold {
            self.crossed_at = Some(self.ticks);
        }
    }

    /// Takes a tick already checked, with the start-time weights of its
    /// number (shared by the tests of a [`ProfiledTest`]'s cells): the
    /// sums, not yet `ln_e` (a profiled test needs it for a few of its
    /// cells only).
    fn take(&mut self, n: f64, k: f64, weights: &StartWeights) {
        let (n_d, k_d) = (n / self.dispersion, k / self.dispersion);
        self.ticks += 1;
        let ln_pi = weights.ln_start;
        // A start at this tick, on the sums' scale. Far above them (the
        // sums decayed), the scale moves to it first; far below (the sums
        // are e^700 times larger) it underflows to 0, where it can never
        // matter.
        if ln_pi - self.scale > RESCALE.ln() {
            let shift = (self.scale - ln_pi).exp();
            self.sums.iter_mut().for_each(|s| *s *= shift);
            self.rescale(ln_pi);
        }
        let fresh = weights.start * self.unscale;
        let mut total = 0.0;
        let mut largest = 0.0f64;
        // One event, good or bad: the factors are known; otherwise one
        // `exp` per alternative.
        let event = (n == 1.0 && (k == 0.0 || k == 1.0)).then_some(k == 1.0);
        let used = self.alternatives;
        for (sum, bet) in self.sums[..used].iter_mut().zip(&self.bets[..used]) {
            let factor = match event {
                Some(true) => bet.bad,
                Some(false) => bet.good,
                None => (k_d * bet.up + (n_d - k_d) * bet.down)
                    .min(self.ln_cap)
                    .exp(),
            };
            *sum = (*sum + fresh) * factor;
            total += *sum;
            largest = largest.max(*sum);
        }
        self.started = total;
        if largest > RESCALE || (largest > 0.0 && largest < 1.0 / RESCALE) {
            self.rescale(self.scale + largest.ln());
            self.sums.iter_mut().for_each(|s| *s /= largest);
        }
        self.total = (self.total.0 + n, self.total.1 + k);
    }

    /// The current e-value E_t (1 before any data).
    pub fn e_value(&self) -> f64 {
        self.ln_e.exp()
    }

    /// Moves the sums' scale to `scale` (the caller divides them).
    fn rescale(&mut self, scale: f64) {
        self.scale = scale;
        // At most e^-709 (the sums e^709 times larger than a start's
        // weight, which never matters then); never above e^250 (the scale
        // moves up to a start's weight first).
        self.unscale = (-scale).exp();
    }

    /// ln of the part of E_t that has started betting (−∞ before data);
    /// E_t adds the starts still to come.
    pub(super) fn ln_started(&self) -> f64 {
        self.scale + self.started.ln() - self.ln_alternatives
    }

    /// A lower bound of [`ErrorRateTest::ln_started`] within ln 2 of it,
    /// from the binary exponent alone (no `ln`).
    pub(super) fn ln_started_floor(&self) -> f64 {
        let bits = self.started.to_bits();
        let exponent = ((bits >> 52) & 0x7ff) as i64;
        if self.started <= 0.0 || exponent == 0 || exponent == 0x7ff {
            // Zero, subnormal, infinite or NaN: exactly.
            return self.ln_started();
        }
        self.scale + (exponent - 1023) as f64 * std::f64::consts::LN_2 - self.ln_alternatives
    }

    /// The e-value at which the test rejects: 1/α_e.
    pub fn threshold(&self) -> f64 {
        self.ln_threshold.exp()
    }

    /// The null's boundary rate p0.
    pub fn null_rate(&self) -> f64 {
        self.p0
    }

    /// Whether the e-value has reached 1/α_e on some tick: the release's
    /// error rate is above p0, at level α.
    pub fn rejected(&self) -> bool {
        self.crossed_at.is_some()
    }

    /// The tick with data (from 1) at which the test first rejected.
    pub fn rejected_at(&self) -> Option<u32> {
        self.crossed_at
    }

    /// The post-release error rate so far (all ticks, not deflated).
    pub fn observed_rate(&self) -> Option<f64> {
        (self.total.0 > 0.0).then(|| self.total.1 / self.total.0)
    }

    /// The dispersion factor counts are divided by.
    pub fn dispersion(&self) -> f64 {
        self.dispersion
    }
}

/// Baseline ticks per block when a series' exceedances are counted: a
/// minute at the default 10 s tick. Counting per block rather than per tick
/// lets the dispersion factor see the series' autocorrelation (a slow
/// minute is slow for several ticks in a row), which a per-tick count of 0
/// or 1 cannot show.
pub const EXCEEDANCE_BLOCK: usize = 6;

/// A value series (a latency quantile per tick) turned into counts for the
/// error-rate test: each tick is one event, bad when its value is above
/// `bound`. Returns `(ticks, exceedances)` per block of
/// [`EXCEEDANCE_BLOCK`] ticks, for [`ErrorBaseline::from_ticks`].
///
/// Under "the release is no worse", a post-release tick exceeds `bound` no
/// more often than a baseline tick did; the test of that is valid under
/// repeated looks, which re-running a rank test on a growing window is not.
pub fn exceedance_blocks(series: &[f64], bound: f64) -> Vec<(f64, f64)> {
    series
        .chunks(EXCEEDANCE_BLOCK)
        .map(|block| {
            let above = block.iter().filter(|&&v| v > bound).count();
            (block.len() as f64, above as f64)
        })
        .collect()
}
