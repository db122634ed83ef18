//! Execution segments (k6's model): a run is the interval [0, 1]; a worker runs the part
//! `from:to` of it, one of a sequence of segments that tile [0, 1]. Everything countable — the
//! n-th arrival, VU number k, the n-th shared iteration, a `unique` data row, a sequence
//! generator's n-th value — is owned by exactly one segment of the sequence, so the workers'
//! union is exactly the single-process run, and a whole run is the segment `0:1`.
//!
//! Ownership is striped: with L the least common denominator of the sequence's points, index
//! i is owned by the segment holding position `(i mod L) · k mod L` (k coprime to L, near
//! L·0.618, so a segment's indices spread over the period instead of bunching). Each period of
//! L indices gives every segment exactly `(to − from) · L` of them.

use std::fmt;

/// An exact fraction in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    num: u64,
    den: u64,
}

impl Ratio {
    pub const ZERO: Ratio = Ratio { num: 0, den: 1 };
    pub const ONE: Ratio = Ratio { num: 1, den: 1 };

    fn new(num: u64, den: u64) -> Result<Ratio, SegmentError> {
        if den == 0 || num > den {
            return Err(SegmentError::Point(format!("{num}/{den}")));
        }
        let g = gcd(num, den);
        Ok(Ratio {
            num: num / g,
            den: den / g,
        })
    }

    /// `1/4`, `25%`, `0.25`, `0` or `1`.
    pub fn parse(s: &str) -> Result<Ratio, SegmentError> {
        let bad = || SegmentError::Point(s.to_owned());
        let s = s.trim();
        let int = |t: &str| t.trim().parse::<u64>().map_err(|_| bad());
        if let Some((n, d)) = s.split_once('/') {
            return Ratio::new(int(n)?, int(d)?).map_err(|_| bad());
        }
        if let Some(p) = s.strip_suffix('%') {
            return Ratio::decimal(p, 100).map_err(|_| bad());
        }
        Ratio::decimal(s, 1).map_err(|_| bad())
    }

    /// A decimal number divided by `scale`, exactly.
    fn decimal(s: &str, scale: u64) -> Result<Ratio, SegmentError> {
        let bad = || SegmentError::Point(s.to_owned());
        let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
        if frac.len() > 9 || (whole.is_empty() && frac.is_empty()) {
            return Err(bad());
        }
        let digits = |t: &str| -> Result<u64, SegmentError> {
            match t.is_empty() {
                true => Ok(0),
                false if t.bytes().all(|b| b.is_ascii_digit()) => t.parse().map_err(|_| bad()),
                false => Err(bad()),
            }
        };
        let den = 10u64.pow(frac.len() as u32);
        let num = digits(whole)? * den + digits(frac)?;
        Ratio::new(num, den * scale)
    }

    fn less(self, o: Ratio) -> bool {
        u128::from(self.num) * u128::from(o.den) < u128::from(o.num) * u128::from(self.den)
    }

    /// self · l, for an l that self's denominator divides.
    fn times(self, l: u64) -> u64 {
        self.num * (l / self.den)
    }

    pub fn as_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.den {
            1 => write!(f, "{}", self.num),
            d => write!(f, "{}/{d}", self.num),
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SegmentError {
    #[error("{0:?} is not a point of [0, 1] (write 1/4, 25% or 0.25)")]
    Point(String),
    #[error("{0:?} is not a segment (write FROM:TO, e.g. 1/4:2/4)")]
    Form(String),
    #[error("segment {0} is empty or backwards (FROM must be below TO)")]
    Backwards(String),
    #[error("the segment sequence must rise strictly from 0 to 1, got {0}")]
    Sequence(String),
    #[error("segment {segment} is not one of the sequence's segments ({sequence})")]
    NotInSequence { segment: String, sequence: String },
    #[error("worker index {index} is not below the worker count {workers}")]
    Index { index: u64, workers: u64 },
    #[error("the segments' common denominator {0} is too large (at most 1,000,000)")]
    Period(u64),
}

/// A worker's part of the run: `[from, to)` of the sequence's tiling, and the stripe that says
/// which indices it owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub from: Ratio,
    pub to: Ratio,
    /// Every point of the tiling, 0 first and 1 last.
    pub sequence: Vec<Ratio>,
    stripe: Stripe,
}

impl Default for Segment {
    fn default() -> Segment {
        Segment::whole()
    }
}

impl Segment {
    /// The whole run, `0:1`.
    pub fn whole() -> Segment {
        Segment::build(Ratio::ZERO, Ratio::ONE, vec![Ratio::ZERO, Ratio::ONE]).expect("0:1")
    }

    /// `FROM:TO` within `sequence` (`0,1/4,…,1`; without one, `0,FROM,TO,1`).
    pub fn parse(segment: &str, sequence: Option<&str>) -> Result<Segment, SegmentError> {
        let (a, b) = segment
            .split_once(':')
            .ok_or_else(|| SegmentError::Form(segment.to_owned()))?;
        let (from, to) = (Ratio::parse(a)?, Ratio::parse(b)?);
        if !from.less(to) {
            return Err(SegmentError::Backwards(segment.to_owned()));
        }
        let points = match sequence {
            Some(s) => s.split(',').map(Ratio::parse).collect::<Result<_, _>>()?,
            None => {
                let mut p = vec![Ratio::ZERO, from, to, Ratio::ONE];
                p.dedup();
                p
            }
        };
        Segment::build(from, to, points)
    }

    /// Worker `index` of `workers` equal segments: `index/workers:(index+1)/workers`.
    pub fn of_workers(index: u64, workers: u64) -> Result<Segment, SegmentError> {
        if index >= workers {
            return Err(SegmentError::Index { index, workers });
        }
        let points = (0..=workers)
            .map(|i| Ratio::new(i, workers))
            .collect::<Result<Vec<_>, _>>()?;
        Segment::build(points[index as usize], points[index as usize + 1], points)
    }

    fn build(from: Ratio, to: Ratio, sequence: Vec<Ratio>) -> Result<Segment, SegmentError> {
        let listed = || {
            let s: Vec<String> = sequence.iter().map(|r| r.to_string()).collect();
            s.join(",")
        };
        let rises = sequence.windows(2).all(|w| w[0].less(w[1]));
        if sequence.first() != Some(&Ratio::ZERO) || sequence.last() != Some(&Ratio::ONE) || !rises
        {
            return Err(SegmentError::Sequence(listed()));
        }
        let at = |r: Ratio| sequence.iter().position(|p| *p == r);
        match (at(from), at(to)) {
            (Some(i), Some(j)) if j == i + 1 => {}
            _ => {
                return Err(SegmentError::NotInSequence {
                    segment: format!("{from}:{to}"),
                    sequence: listed(),
                })
            }
        }
        let period = sequence.iter().try_fold(1u64, |l, r| {
            let l = l / gcd(l, r.den) * r.den;
            (l <= 1_000_000).then_some(l).ok_or(SegmentError::Period(l))
        })?;
        let stripe = Stripe::new(period, from.times(period), to.times(period));
        Ok(Segment {
            from,
            to,
            sequence,
            stripe,
        })
    }

    pub fn is_whole(&self) -> bool {
        self.from == Ratio::ZERO && self.to == Ratio::ONE
    }

    /// Which segment of the sequence this is (0-based): a worker's index.
    pub fn index(&self) -> usize {
        self.sequence
            .iter()
            .position(|p| *p == self.from)
            .unwrap_or(0)
    }

    /// Does this segment own index `i`?
    pub fn owns(&self, i: u64) -> bool {
        self.stripe.owns(i)
    }

    /// The global index of this segment's `j`-th owned index (0-based).
    pub fn nth(&self, j: u64) -> u64 {
        self.stripe.nth(j)
    }

    /// How many of the indices `0..n` this segment owns: its share of a count of `n` (VUs,
    /// shared iterations). The shares of a sequence's segments sum to exactly `n`.
    pub fn share(&self, n: u64) -> u64 {
        self.stripe.count_below(n)
    }

    /// `FROM:TO` as written back (for reports and the workers' command lines).
    pub fn label(&self) -> String {
        format!("{}:{}", self.from, self.to)
    }
}

/// Which residues mod `period` a segment owns, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stripe {
    period: u64,
    owned: Vec<u64>,
}

impl Stripe {
    /// Residue r is at position r·k mod period; the segment holds positions `lo..hi`.
    fn new(period: u64, lo: u64, hi: u64) -> Stripe {
        let k = spread(period);
        let mut owned: Vec<u64> = (0..period)
            .filter(|r| (lo..hi).contains(&((u128::from(*r) * u128::from(k)) as u64 % period)))
            .collect();
        owned.sort_unstable();
        Stripe { period, owned }
    }

    fn owns(&self, i: u64) -> bool {
        self.owned.binary_search(&(i % self.period)).is_ok()
    }

    fn nth(&self, j: u64) -> u64 {
        let m = self.owned.len() as u64;
        (j / m) * self.period + self.owned[(j % m) as usize]
    }

    fn count_below(&self, n: u64) -> u64 {
        let m = self.owned.len() as u64;
        let rest = n % self.period;
        (n / self.period) * m + self.owned.partition_point(|r| *r < rest) as u64
    }
}

/// A multiplier coprime to `period` near period·0.618 (1 for tiny periods).
fn spread(period: u64) -> u64 {
    let target = (period as f64 * 0.618).round() as u64;
    (0..period)
        .flat_map(|d| [target.saturating_sub(d), target + d])
        .find(|k| *k >= 1 && *k < period.max(2) && gcd(*k, period) == 1)
        .unwrap_or(1)
}

fn gcd(a: u64, b: u64) -> u64 {
    match b {
        0 => a.max(1),
        _ => gcd(b, a % b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quarters() -> Vec<Segment> {
        (0..4).map(|i| Segment::of_workers(i, 4).unwrap()).collect()
    }

    #[test]
    fn points_parse_as_fractions_percentages_and_decimals() {
        assert_eq!(Ratio::parse("2/4").unwrap(), Ratio::parse("50%").unwrap());
        assert_eq!(Ratio::parse("0.5").unwrap(), Ratio::parse("1/2").unwrap());
        assert_eq!(Ratio::parse("1").unwrap(), Ratio::ONE);
        for bad in ["5/4", "x", "1/0", "-1", "0.5.5", ""] {
            assert!(Ratio::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn segments_must_be_in_a_rising_sequence() {
        let s = Segment::parse("1/4:2/4", Some("0,1/4,1/2,3/4,1")).unwrap();
        assert_eq!((s.index(), s.label()), (1, "1/4:1/2".to_owned()));
        assert!(matches!(
            Segment::parse("1/4:3/4", Some("0,1/4,1/2,3/4,1")),
            Err(SegmentError::NotInSequence { .. })
        ));
        assert!(matches!(
            Segment::parse("2/4:1/4", None),
            Err(SegmentError::Backwards(_))
        ));
        assert!(matches!(
            Segment::parse("0:1/2", Some("0,1/2")),
            Err(SegmentError::Sequence(_))
        ));
        assert!(Segment::parse("0:1", None).unwrap().is_whole());
        assert!(Segment::of_workers(4, 4).is_err());
    }

    #[test]
    fn every_index_has_exactly_one_owner() {
        for segs in [
            quarters(),
            (0..3).map(|i| Segment::of_workers(i, 3).unwrap()).collect(),
            ["0:1/3", "1/3:5/6", "5/6:1"]
                .iter()
                .map(|s| Segment::parse(s, Some("0,1/3,5/6,1")).unwrap())
                .collect(),
        ] {
            for i in 0..1000 {
                assert_eq!(segs.iter().filter(|s| s.owns(i)).count(), 1, "index {i}");
            }
            for n in 0..200 {
                let total: u64 = segs.iter().map(|s| s.share(n)).sum();
                assert_eq!(total, n);
            }
        }
    }

    #[test]
    fn nth_lists_the_owned_indices_in_order() {
        for s in quarters() {
            let owned: Vec<u64> = (0..400).filter(|i| s.owns(*i)).collect();
            let nth: Vec<u64> = (0..100).map(|j| s.nth(j)).collect();
            assert_eq!(owned, nth);
            assert_eq!(s.share(400), 100);
        }
    }

    #[test]
    fn a_whole_run_owns_everything() {
        let w = Segment::whole();
        assert!((0..100).all(|i| w.owns(i) && w.nth(i) == i && w.share(i) == i));
    }

    #[test]
    fn stripes_spread_over_the_period() {
        // Half of a period of 10: not the first five indices in a row.
        let s = Segment::parse("0:1/2", Some("0,1/2,1")).unwrap();
        let t = Segment::parse("0:5/10", Some("0,1/2,7/10,1")).unwrap();
        assert_eq!(s.share(2), 1);
        let owned: Vec<u64> = (0..10).filter(|i| t.owns(*i)).collect();
        assert_eq!(owned.len(), 5);
        assert_ne!(owned, vec![0, 1, 2, 3, 4]);
    }
}
