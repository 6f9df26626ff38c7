//! The error-rate test with the baseline's uncertainty inside the e-value
//! rather than in a separate confidence bound.
//!
//! [`ErrorRateTest::new`] tests against an *upper bound* of the baseline
//! rate at α/2 and spends the other α/2 on Ville's bound: the two errors add
//! (a union bound), and the bound costs about `z · σ_baseline` on top of
//! the test's own threshold even when the release's evidence is
//! overwhelming. [`ProfiledTest`] lets the two pieces of evidence trade off
//! against each other, as a two-sample likelihood ratio does.
//!
//! For every baseline rate λ, the product
//! `e_b(λ) · M_t(λ)` is a nonnegative supermartingale with expectation at
//! most 1 when λ is the true rate:
//!
//! - `e_b(λ) = Q(K₂) / P_λ(K₂)`, where `P_λ` is the binomial likelihood of
//!   the baseline's errors `K₂` in `N₂` requests and `Q` the beta-binomial
//!   predictive of the same counts from a prior that does not depend on
//!   them (it comes from other blocks, below), so `E_λ[Q/P_λ] = 1`;
//! - `M_t(λ)` is [`ErrorRateTest`]'s mixture e-process against
//!   `p0(λ) = max((1 + δ) λ, λ + min_increase)`, a supermartingale under
//!   any post-release rates at most `p0(λ)`, given the baseline.
//!
//! The true λ is unknown, so the test takes the smallest over λ,
//! `E_t = inf_λ e_b(λ) M_t(λ)`, which is at most the true λ's product; by
//! Ville's inequality `P(sup_t E_t ≥ 1/α) ≤ α` with the whole α (no union
//! bound). The infimum is taken over cells of a grid, conservatively: in a
//! cell `[λ_a, λ_b]` the baseline factor is the cell's smallest (its
//! likelihood's largest, at `λ_a` above the estimate) and the release's
//! e-process is the one against `p0(λ_b)`, the cell's most lenient null.
//! Beyond the last cell the baseline alone already says more than `1/α`,
//! so those rates cannot hold the test back; a cell whose null would be a
//! rate of 0.99 or more, which nothing can beat, counts at `M ≡ 1`.
//!
//! The prior of `Q` is the posterior (Jeffreys) of every tenth baseline
//! block ([`PRIOR_SHARE`]), which are then left out of `K₂, N₂`: a prior
//! fixed without data would cost about `½ ln K₂` plus the log of its range
//! (4 nats at 100 baseline errors); this one costs about
//! `½ ln(1/PRIOR_SHARE)` (1.2 nats). Blocks spread over the whole baseline,
//! not its oldest minutes, so that a slow drift of the rate does not leave
//! the prior unlike the rest (the oldest 10% cost 6 nats on one benchmark
//! release whose first minutes had no errors). Counts are deflated by the
//! dispersion factor, as in [`ErrorRateTest`].
//!
//! On the same data at the edge of detectability (`tests_profile.rs`), the
//! profiled test catches 1.1–1.3 times as many regressions as the union
//! bound (an e-process that knew the baseline rate would catch nearly all
//! of them: estimating it is what the rest costs). It can need one more
//! tick for an extreme regression (the prior's cost), which the fast path
//! does not wait for.

use super::{ErrorRateSettings, ErrorRateTest, Pooled, StartWeights, ln_add, usable};
use statrs::function::beta::ln_beta;

/// Share of the baseline's blocks (every tenth) that sets the prior of the
/// baseline's predictive.
pub const PRIOR_SHARE: f64 = 0.1;

/// Baseline blocks the test needs (one at least for the prior, the rest for
/// the likelihood); with fewer, the caller falls back to the union bound.
pub const MIN_BLOCKS: usize = 4;

/// Width of a grid cell in standard errors of the baseline rate.
const CELL_Z: f64 = 0.5;

/// Most cells, whatever the baseline.
const MAX_CELLS: usize = 64;

/// Null rates from which a cell's release test is not run (`M ≡ 1`).
const MAX_NULL: f64 = 0.99;

/// One cell of the baseline-rate grid.
#[derive(Debug, Clone, PartialEq)]
struct Cell {
    /// ln e_b: the baseline's evidence against the cell's rates.
    ln_baseline: f64,
    /// The release's e-process against the cell's most lenient null;
    /// `None` where that null would be a rate of 0.99 or more, which no
    /// test can beat (the cell counts as `M ≡ 1`).
    test: Option<ErrorRateTest>,
}

/// The sequential test of a release's error rate against its baseline,
/// with the baseline rate profiled out (module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct ProfiledTest {
    /// The grid, from the baseline's estimate upwards.
    cells: Vec<Cell>,
    /// ln(1/α).
    ln_threshold: f64,
    /// ln E_t.
    ln_e: f64,
    /// The cell with the smallest product on the last tick.
    binding: usize,
    /// Ticks with data so far.
    ticks: u32,
    /// The tick (counting ticks with data, from 1) at which E first crossed.
    crossed_at: Option<u32>,
    /// The baseline's rate, all blocks.
    rate: f64,
    /// Dispersion factor from the baseline.
    dispersion: f64,
}

/// `k ln λ + (n − k) ln(1 − λ)`: the binomial log-likelihood without its
/// constant, exact at λ = 0 and λ = 1 when no count says otherwise.
fn ln_likelihood(n: f64, k: f64, lambda: f64) -> f64 {
    let bad = if k > 0.0 { k * lambda.ln() } else { 0.0 };
    let good = if n - k > 0.0 {
        (n - k) * (-lambda).ln_1p()
    } else {
        0.0
    };
    bad + good
}

impl ProfiledTest {
    /// The test from the baseline's `(requests, errors)` blocks, oldest
    /// first; `None` with fewer than [`MIN_BLOCKS`] blocks with data or no
    /// requests after the prior's share.
    pub fn new(blocks: &[(f64, f64)], settings: &ErrorRateSettings) -> Option<ProfiledTest> {
        let Pooled {
            blocks,
            requests: n,
            errors: k,
            rate,
            dispersion: phi,
        } = Pooled::new(blocks)?;
        if blocks.len() < MIN_BLOCKS {
            return None;
        }
        // Every block in 1/PRIOR_SHARE, spread over the whole baseline so
        // that a slow drift does not leave the prior unlike the rest, sets
        // the prior.
        let stride = (1.0 / PRIOR_SHARE).round().max(2.0) as usize;
        let prior = blocks
            .iter()
            .step_by(stride)
            .fold((0.0, 0.0), |(pn, pk), &(bn, bk)| (pn + bn, pk + bk));
        let n2 = (n - prior.0) / phi;
        if n2 <= 0.0 {
            return None;
        }
        let k2 = ((k - prior.1) / phi).clamp(0.0, n2);
        let (a, b) = (prior.1 / phi + 0.5, (prior.0 - prior.1) / phi + 0.5);
        let ln_q = ln_beta(a + k2, b + n2 - k2) - ln_beta(a, b);
        let ln_threshold = (1.0 / settings.alpha.clamp(1e-12, 0.5)).ln();
        let null =
            |lambda: f64| ((1.0 + settings.delta) * lambda).max(lambda + settings.min_increase);
        // Cell edges evenly spaced on the square-root scale, where the
        // rate's standard error is about constant: (√K₂ + j·z/2)² / N₂.
        let edge = |j: usize| ((k2.sqrt() + j as f64 * CELL_Z / 2.0).powi(2) / n2).min(1.0);
        let test = |lambda: f64| {
            let p0 = null(lambda);
            (p0 < MAX_NULL).then(|| ErrorRateTest::at_level(p0, phi, ln_threshold))
        };
        let mut low = edge(0);
        let mut cells = vec![Cell {
            ln_baseline: ln_q - ln_likelihood(n2, k2, low),
            test: test(low),
        }];
        for j in 1..=MAX_CELLS {
            let ln_baseline = ln_q - ln_likelihood(n2, k2, low);
            if ln_baseline >= ln_threshold + 1.0 {
                break;
            }
            let high = edge(j);
            // A cell without a test reaches from `low` to 1 (`M ≡ 1`): the
            // grid's last, where it ends before the baseline alone rules
            // the rates out or where the null would be beyond MAX_NULL.
            let release = if j == MAX_CELLS { None } else { test(high) };
            let last = release.is_none();
            cells.push(Cell {
                ln_baseline,
                test: release,
            });
            if last {
                break;
            }
            low = high;
        }
        // Before any data every cell's M is 1: E is the smallest baseline
        // factor.
        let (binding, ln_e) = cells
            .iter()
            .map(|c| c.ln_baseline)
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, 0.0));
        Some(ProfiledTest {
            cells,
            ln_threshold,
            ln_e,
            binding,
            ticks: 0,
            crossed_at: None,
            rate,
            dispersion: phi,
        })
    }

    /// Takes one tick's `(requests, errors)`; `None` (no data, or numbers
    /// that make no sense) leaves the e-value as it is.
    pub fn update(&mut self, counts: Option<(f64, f64)>) {
        let Some(counts) = counts.filter(usable) else {
            return;
        };
        self.ticks += 1;
        let weights = StartWeights::at(self.ticks);
        for test in self.cells.iter_mut().filter_map(|c| c.test.as_mut()) {
            test.take(counts.0, counts.1, &weights);
        }
        self.settle(weights.ln_unstarted);
        if self.crossed_at.is_none() && self.ln_e >= self.ln_threshold {
            self.crossed_at = Some(self.ticks);
        }
    }

    /// E_t and its binding cell from the cells' products, after a tick
    /// whose starts still to come weigh `e^ln_unstarted`. A cell's ln M is
    /// `ln(e^started + e^unstarted)`, within ln 2 of the larger term, and
    /// `started` is known within ln 2 from its binary exponent: a cell
    /// whose floor is more than 2 ln 2 above the lowest floor cannot be the
    /// minimum, and only the others pay for the exact `ln`.
    fn settle(&mut self, ln_unstarted: f64) {
        let floor = |c: &Cell| {
            c.test.as_ref().map_or(c.ln_baseline, |t| {
                c.ln_baseline + t.ln_started_floor().max(ln_unstarted)
            })
        };
        let exact = |c: &Cell| {
            c.test.as_ref().map_or(c.ln_baseline, |t| {
                c.ln_baseline + ln_add(t.ln_started(), ln_unstarted)
            })
        };
        let lowest = self.cells.iter().map(floor).fold(f64::INFINITY, f64::min);
        let (binding, ln_e) = self
            .cells
            .iter()
            .enumerate()
            .filter(|(_, c)| floor(c) < lowest + 2.0 * std::f64::consts::LN_2)
            .map(|(i, c)| (i, exact(c)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, lowest));
        self.binding = binding;
        self.ln_e = ln_e;
    }

    /// The current e-value E_t.
    pub fn e_value(&self) -> f64 {
        self.ln_e.exp()
    }

    /// The e-value at which the test rejects: 1/α.
    pub fn threshold(&self) -> f64 {
        self.ln_threshold.exp()
    }

    /// The null's boundary rate of the binding cell: the most lenient
    /// reading of the baseline that the evidence still has to beat.
    pub fn null_rate(&self) -> f64 {
        self.cells
            .get(self.binding)
            .and_then(|c| c.test.as_ref())
            .map_or(1.0, ErrorRateTest::null_rate)
    }

    /// Whether the e-value has reached 1/α on some tick.
    pub fn rejected(&self) -> bool {
        self.crossed_at.is_some()
    }

    /// The tick with data (from 1) at which the test first rejected.
    pub fn rejected_at(&self) -> Option<u32> {
        self.crossed_at
    }

    /// The baseline's error rate (all blocks, not deflated).
    pub fn baseline_rate(&self) -> f64 {
        self.rate
    }

    /// The dispersion factor counts are divided by.
    pub fn dispersion(&self) -> f64 {
        self.dispersion
    }

    /// Cells of the baseline-rate grid.
    pub fn cells(&self) -> usize {
        self.cells.len()
    }
}
