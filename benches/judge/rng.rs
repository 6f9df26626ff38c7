//! A small, seeded random source and the distributions the generator draws
//! from, written here so that the bench needs no `rand` (statrs is built
//! without it) and every run with the same `--seed` is the same.
//!
//! xoshiro256** seeded through SplitMix64; normals by Box–Muller; Gamma by
//! Marsaglia–Tsang; Poisson by inversion for small means and Hörmann's PTRS
//! above; binomial by inversion when the expected count is small and a
//! rounded normal otherwise.

use statrs::function::gamma::ln_gamma;

/// xoshiro256**: fast, good enough for simulation, reproducible.
#[derive(Debug, Clone)]
pub struct Rng {
    /// The generator's 256-bit state.
    state: [u64; 4],
}

impl Rng {
    /// A generator for `seed`; distinct seeds give unrelated streams.
    pub fn new(seed: u64) -> Rng {
        let mut sm = seed;
        let mut next = || {
            sm = sm.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = sm;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng {
            state: [next(), next(), next(), next()],
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform on [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform on (0, 1): safe to take the logarithm of.
    fn open_uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform on [low, high).
    pub fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.uniform()
    }

    /// Log-uniform on [low, high): every decade equally likely.
    pub fn log_between(&mut self, low: f64, high: f64) -> f64 {
        self.between(low.ln(), high.ln()).exp()
    }

    /// A whole number in [low, high].
    pub fn int_between(&mut self, low: usize, high: usize) -> usize {
        let span = (high - low + 1) as f64;
        low + ((self.uniform() * span) as usize).min(high - low)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// A standard normal draw.
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.open_uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// Gamma with shape `k` and scale 1 (Marsaglia–Tsang; boosted below 1).
    pub fn gamma(&mut self, k: f64) -> f64 {
        if k < 1.0 {
            let boost = self.open_uniform().powf(1.0 / k);
            return self.gamma(k + 1.0) * boost;
        }
        let d = k - 1.0 / 3.0;
        let c = 1.0 / (9.0 * d).sqrt();
        loop {
            let x = self.normal();
            let v = (1.0 + c * x).powi(3);
            if v <= 0.0 {
                continue;
            }
            let u = self.open_uniform();
            if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
                return d * v;
            }
        }
    }

    /// Poisson with mean `lambda`.
    pub fn poisson(&mut self, lambda: f64) -> u64 {
        if lambda <= 0.0 {
            0
        } else if lambda < 30.0 {
            self.poisson_inversion(lambda)
        } else {
            self.poisson_ptrs(lambda)
        }
    }

    /// Poisson by sequential inversion: exact, cost grows with the mean.
    fn poisson_inversion(&mut self, lambda: f64) -> u64 {
        let mut k = 0u64;
        let mut p = (-lambda).exp();
        let mut cdf = p;
        let u = self.uniform();
        while u > cdf && k < 1000 {
            k += 1;
            p *= lambda / k as f64;
            cdf += p;
        }
        k
    }

    /// Poisson by transformed rejection with squeeze (Hörmann 1993), as in
    /// numpy, for means of 10 and more.
    fn poisson_ptrs(&mut self, lambda: f64) -> u64 {
        let slam = lambda.sqrt();
        let loglam = lambda.ln();
        let b = 0.931 + 2.53 * slam;
        let a = -0.059 + 0.02483 * b;
        let invalpha = 1.1239 + 1.1328 / (b - 3.4);
        let vr = 0.9277 - 3.6224 / (b - 2.0);
        loop {
            let u = self.uniform() - 0.5;
            let v = self.uniform();
            let us = 0.5 - u.abs();
            let k = ((2.0 * a / us + b) * u + lambda + 0.43).floor();
            if us >= 0.07 && v <= vr {
                return k as u64;
            }
            if k < 0.0 || (us < 0.013 && v > us) {
                continue;
            }
            let lhs = v.ln() + invalpha.ln() - (a / (us * us) + b).ln();
            if lhs <= -lambda + k * loglam - ln_gamma(k + 1.0) {
                return k as u64;
            }
        }
    }

    /// Binomial: successes in `n` trials of probability `p`.
    pub fn binomial(&mut self, n: u64, p: f64) -> u64 {
        let p = p.clamp(0.0, 1.0);
        if p > 0.5 {
            return n - self.binomial(n, 1.0 - p);
        }
        let mean = n as f64 * p;
        if n == 0 || p == 0.0 {
            0
        } else if mean < 30.0 {
            // Inversion: P(0) = q^n, then the pmf's ratio recursion.
            let q = 1.0 - p;
            let ratio = p / q;
            let mut pmf = q.powf(n as f64);
            let mut cdf = pmf;
            let u = self.uniform();
            let mut k = 0u64;
            while u > cdf && k < n {
                pmf *= ratio * (n - k) as f64 / (k + 1) as f64;
                k += 1;
                cdf += pmf;
            }
            k
        } else {
            let sd = (mean * (1.0 - p)).sqrt();
            (mean + sd * self.normal()).round().clamp(0.0, n as f64) as u64
        }
    }
}
