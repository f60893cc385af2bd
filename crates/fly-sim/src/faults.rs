//! Seeded fault injection: the same seed and request sequence give the same faults.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// A failure injected before the request does anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Status(u16),
    Reset,
}

/// How an applied change loses its response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    Status500,
    Reset,
}

#[derive(Debug)]
pub struct FaultRng {
    rng: StdRng,
    fault_rate: f64,
    ambiguous_rate: f64,
}

impl FaultRng {
    pub fn new(seed: u64, fault_rate: f64, ambiguous_rate: f64) -> FaultRng {
        FaultRng {
            rng: StdRng::seed_from_u64(seed),
            fault_rate,
            ambiguous_rate,
        }
    }

    /// One draw per request, always consuming the same amount of randomness.
    pub fn draw(&mut self) -> (Option<Fault>, Option<Loss>) {
        let f: f64 = self.rng.random();
        let which: u32 = self.rng.random_range(0..5);
        let a: f64 = self.rng.random();
        let how: bool = self.rng.random();
        let fault = (f < self.fault_rate).then_some(match which {
            0 => Fault::Status(500),
            1 => Fault::Status(502),
            2 => Fault::Status(503),
            3 => Fault::Status(429),
            _ => Fault::Reset,
        });
        let loss =
            (a < self.ambiguous_rate).then_some(if how { Loss::Status500 } else { Loss::Reset });
        (fault, loss)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let seq = |seed| {
            let mut rng = FaultRng::new(seed, 0.3, 0.3);
            (0..200).map(|_| rng.draw()).collect::<Vec<_>>()
        };
        assert_eq!(seq(42), seq(42));
        assert_ne!(seq(42), seq(43));
        let faults = seq(42).iter().filter(|(f, _)| f.is_some()).count();
        assert!(
            (30..90).contains(&faults),
            "{faults} faults of 200 at rate 0.3"
        );
    }

    #[test]
    fn zero_rates_inject_nothing() {
        let mut rng = FaultRng::new(1, 0.0, 0.0);
        assert!((0..100).all(|_| rng.draw() == (None, None)));
    }
}
