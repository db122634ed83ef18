//! A trend (k6's word for a metric of many timed values): an HDR histogram of microseconds with
//! the exact minimum, maximum and sum kept beside it, because a histogram only knows its
//! buckets (within 0.1%) and `min`, `max` and `avg` must be what was measured.
//!
//! Percentiles follow k6 (`k6_rules::quantile`: interpolation at p × (n − 1)) over
//! [`Trend::buckets_ms`], so a report's p(95) is the number a threshold judged.

use hdrhistogram::Histogram;

#[derive(Debug, Clone)]
pub struct Trend {
    /// 1 µs .. 1 h at 3 significant digits; fixed bounds so recording never resizes. A value
    /// past an hour is counted at the top bucket (its exact value is still in `max`).
    hist: Histogram<u64>,
    /// Exact smallest and largest value recorded, in µs (meaningless while empty).
    min: u64,
    max: u64,
    /// Exact sum of the values, in µs.
    sum: u128,
}

impl Default for Trend {
    fn default() -> Self {
        Trend {
            hist: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"),
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }
}

impl Trend {
    /// Records one value in µs.
    pub fn record(&mut self, us: u64) {
        self.hist.saturating_record(us);
        self.min = self.min.min(us);
        self.max = self.max.max(us);
        self.sum += u128::from(us);
    }

    /// Records a duration (at least 1 µs: HDR's lowest value).
    pub fn record_duration(&mut self, d: std::time::Duration) {
        self.record(d.as_micros().max(1) as u64);
    }

    /// Adds every value of `other`.
    pub fn add(&mut self, other: &Trend) {
        if other.is_empty() {
            return;
        }
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.hist.add(&other.hist);
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    pub fn len(&self) -> u64 {
        self.hist.len()
    }

    /// What `self` holds beyond `earlier` (an earlier state of the same trend): the counts
    /// and the sum recorded since, with the exact extremes so far, so adding the parts of
    /// every window gives back the whole trend exactly.
    pub fn since(&self, earlier: &Trend) -> Trend {
        let mut hist = self.hist.clone();
        // `earlier` is a prefix of `self`: every count is at most self's, so this cannot fail.
        let _ = hist.subtract(&earlier.hist);
        Trend {
            hist,
            min: self.min,
            max: self.max,
            sum: self.sum - earlier.sum,
        }
    }

    /// The histogram in HdrHistogram's V2 format, DEFLATE-compressed (the interval log's).
    pub fn encode(&self) -> Vec<u8> {
        use hdrhistogram::serialization::{Serializer, V2DeflateSerializer};
        let mut out = Vec::new();
        V2DeflateSerializer::new()
            .serialize(&self.hist, &mut out)
            .expect("a histogram serialises into memory");
        out
    }

    /// A trend from its encoded histogram and its exact extremes and sum.
    pub fn decode(bytes: &[u8], min: u64, max: u64, sum: u128) -> Result<Trend, String> {
        let hist: hdrhistogram::Histogram<u64> = hdrhistogram::serialization::Deserializer::new()
            .deserialize(&mut &bytes[..])
            .map_err(|e| format!("{e:?}"))?;
        let mut t = Trend::default();
        t.hist.add(&hist).map_err(|e| format!("{e:?}"))?;
        t.min = min;
        t.max = max;
        t.sum = sum;
        Ok(t)
    }

    /// Adds a histogram read off its encoding ([`Encoded::parse`]) and its exact extremes and
    /// sum: the counts go straight into this histogram, so no histogram of 23,552 counters is
    /// built per window, which is what lets one coordinator core absorb many workers.
    pub fn add_encoded(&mut self, e: &Encoded, exact: (u64, u64, u128)) {
        match e {
            Encoded::Counts(counts) => {
                for &(value, n) in counts {
                    let _ = self.hist.record_n(value, n);
                }
            }
            // Same bounds on both sides, so adding cannot fail.
            Encoded::Other(t) => {
                let _ = self.hist.add(&t.hist);
            }
        }
        if self.hist.is_empty() {
            return;
        }
        self.min = self.min.min(exact.0);
        self.max = self.max.max(exact.1);
        self.sum += exact.2;
    }

    /// The exact extremes and sum: (min, max, sum) in µs.
    pub fn exact(&self) -> (u64, u64, u128) {
        (self.min, self.max, self.sum)
    }

    /// The same histogram bucket for bucket (the extremes and sum aside).
    pub fn same_buckets(&self, other: &Trend) -> bool {
        self.hist == other.hist
    }

    /// Values at or below `us` (a Prometheus histogram's cumulative bucket `le`); values in the
    /// histogram's bucket holding `us` count as below it, within its 3 significant digits.
    pub fn count_le_us(&self, us: u64) -> u64 {
        self.hist.count_between(0, us)
    }

    /// The exact sum, in seconds.
    pub fn sum_secs(&self) -> f64 {
        self.sum as f64 / 1e6
    }

    pub fn is_empty(&self) -> bool {
        self.hist.is_empty()
    }

    pub fn min_ms(&self) -> Option<f64> {
        (!self.is_empty()).then(|| self.min as f64 / 1000.0)
    }

    pub fn max_ms(&self) -> Option<f64> {
        (!self.is_empty()).then(|| self.max as f64 / 1000.0)
    }

    pub fn mean_ms(&self) -> Option<f64> {
        (!self.is_empty()).then(|| self.sum as f64 / self.len() as f64 / 1000.0)
    }

    /// The `q` quantile (0..=1) in ms, as k6 computes it.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        k6_rules::quantile(&self.buckets_ms(), q)
    }

    /// (value in ms, samples) ascending: what the plugin ABI carries. Each bucket stands for
    /// its samples at the bucket's middle value, except that the smallest and the largest
    /// sample are entries of their own with their exact values, so `min` and `max` (and a
    /// percentile that lands on them) are exact.
    pub fn buckets_ms(&self) -> Vec<(f64, u64)> {
        let n = self.len();
        if n == 0 {
            return Vec::new();
        }
        let (min, max) = (self.min as f64 / 1000.0, self.max as f64 / 1000.0);
        if n == 1 {
            return vec![(min, 1)];
        }
        let mut out = vec![(min, 1)];
        let mut buckets: Vec<(f64, u64)> = self
            .hist
            .iter_recorded()
            .map(|v| {
                let mid = self.hist.median_equivalent(v.value_iterated_to()) as f64 / 1000.0;
                (mid.clamp(min, max), v.count_at_value())
            })
            .collect();
        // The extremes' own entries take one sample from the first and the last bucket.
        buckets[0].1 -= 1;
        let last = buckets.len() - 1;
        buckets[last].1 -= 1;
        out.extend(buckets.into_iter().filter(|b| b.1 > 0));
        out.push((max, 1));
        out
    }
}

/// A histogram read off its V2 (+ DEFLATE) encoding, ready for [`Trend::add_encoded`]: its
/// non-zero counts by value when it has a [`Trend`]'s own bucket layout, else the histogram
/// hdrhistogram's deserialiser built (the long way).
pub enum Encoded {
    Counts(Vec<(u64, u64)>),
    Other(Trend),
}

impl Encoded {
    /// Decompresses and reads the encoding once; a broken one is an error, before anything
    /// is added anywhere.
    pub fn parse(bytes: &[u8]) -> Result<Encoded, String> {
        let raw = v2::payload(bytes)?;
        if !v2::same_layout(&raw) {
            return Ok(Encoded::Other(Trend::decode(bytes, 0, 0, 0)?));
        }
        let mut counts = Vec::new();
        v2::for_each_count(&raw, |i, n| counts.push((v2::value_at(i), n)))?;
        Ok(Encoded::Counts(counts))
    }
}

/// HdrHistogram's V2 encoding, read for [`Encoded::parse`]: a 40-byte header (cookie,
/// payload length, normalising offset, significant digits, lowest and highest trackable
/// values, conversion ratio, all big-endian), then LEB128-64b9B zig-zag varints — a positive
/// number is the count at the next index, a negative one skips that many empty indices. The
/// DEFLATE form is its own cookie, a length and the V2 bytes zlib-compressed.
mod v2 {
    use std::borrow::Cow;
    use std::io::Read;

    const V2: u32 = 0x1c84_9313;
    const V2_DEFLATE: u32 = 0x1c84_9314;
    const HEADER: usize = 40;

    fn be32(b: &[u8], at: usize) -> Option<u32> {
        Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
    }

    fn be64(b: &[u8], at: usize) -> Option<u64> {
        Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
    }

    /// The uncompressed V2 bytes.
    pub fn payload(bytes: &[u8]) -> Result<Cow<'_, [u8]>, String> {
        match be32(bytes, 0) {
            Some(V2) => Ok(Cow::Borrowed(bytes)),
            Some(V2_DEFLATE) => {
                let len = be32(bytes, 4).ok_or("truncated")? as usize;
                let body = bytes.get(8..8 + len).ok_or("truncated")?;
                let mut out = Vec::with_capacity(len * 4);
                flate2::read::ZlibDecoder::new(body)
                    .read_to_end(&mut out)
                    .map_err(|e| format!("DEFLATE: {e}"))?;
                Ok(Cow::Owned(out))
            }
            other => Err(format!("not a V2 histogram (cookie {other:x?})")),
        }
    }

    /// Offset 0, 3 digits, 1 .. 1 h: a [`super::Trend`]'s own layout.
    pub fn same_layout(raw: &[u8]) -> bool {
        be32(raw, 8) == Some(0)
            && be32(raw, 12) == Some(3)
            && be64(raw, 16) == Some(1)
            && be64(raw, 24) == Some(3_600_000_000)
    }

    /// The value of counts index `i` in that layout (2,048 sub-buckets, unit 1).
    pub fn value_at(i: usize) -> u64 {
        let bucket = (i >> 10) as i64 - 1;
        let sub = ((i & 1023) + 1024) as u64;
        match bucket < 0 {
            true => sub - 1024,
            false => sub << bucket,
        }
    }

    /// Calls `f(index, count)` for every non-zero count.
    pub fn for_each_count(raw: &[u8], mut f: impl FnMut(usize, u64)) -> Result<(), String> {
        let len = be32(raw, 4).ok_or("truncated")? as usize;
        let mut rest = raw.get(HEADER..HEADER + len).ok_or("truncated payload")?;
        let mut index = 0usize;
        while !rest.is_empty() {
            let (zz, used) = varint(rest).ok_or("truncated count")?;
            rest = &rest[used..];
            let n = ((zz >> 1) as i64) ^ -((zz & 1) as i64);
            if n < 0 {
                index += n.unsigned_abs() as usize;
            } else {
                if n > 0 {
                    f(index, n as u64);
                }
                index += 1;
            }
        }
        Ok(())
    }

    /// LEB128-64b9B: 8 groups of 7 bits, then a 9th byte of 8.
    fn varint(b: &[u8]) -> Option<(u64, usize)> {
        let mut v = 0u64;
        for i in 0..8 {
            let byte = *b.get(i)?;
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some((v, i + 1));
            }
        }
        Some((v | u64::from(*b.get(8)?) << 56, 9))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_encoded_histogram_adds_bucket_for_bucket() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut t = Trend::default();
        for _ in 0..5000 {
            t.record(match rng.u8(0..10) {
                0 => rng.u64(1..2048),
                1 => rng.u64(1_000_000_000..3_600_000_000),
                _ => rng.u64(2000..3_000_000),
            });
        }
        let mut fast = trend(&[17, 40_000]);
        let mut slow = fast.clone();
        fast.add_encoded(&Encoded::parse(&t.encode()).unwrap(), t.exact());
        slow.add(&Trend::decode(&t.encode(), t.min, t.max, t.sum).unwrap());
        assert!(fast.same_buckets(&slow));
        assert_eq!(fast.exact(), slow.exact());
        assert!(Encoded::parse(b"nope").is_err());
    }

    fn trend(values_us: &[u64]) -> Trend {
        let mut t = Trend::default();
        for v in values_us {
            t.record(*v);
        }
        t
    }

    #[test]
    fn min_max_and_mean_are_exact() {
        // 50,001 µs sits in a 32 µs-wide bucket: the histogram alone would say 50.015.
        let t = trend(&[50_001, 70_003, 123_457]);
        assert_eq!(t.min_ms(), Some(50.001));
        assert_eq!(t.max_ms(), Some(123.457));
        assert_eq!(t.mean_ms(), Some(81.153_666_666_666_67));
        assert_eq!(Trend::default().mean_ms(), None);
    }

    #[test]
    fn percentiles_are_k6s_on_the_exact_extremes() {
        // k6's two-sample example: p(95) of 5 and 10 is 9.75.
        assert_eq!(trend(&[5_000, 10_000]).quantile_ms(0.95), Some(9.75));
        assert_eq!(trend(&[7_000]).quantile_ms(0.5), Some(7.0));
        // k6's ten-sample example: med 55.
        let ten: Vec<u64> = (1..=10).map(|i| i * 10_000).collect();
        let med = trend(&ten).quantile_ms(0.5).unwrap();
        assert!((med - 55.0).abs() / 55.0 < 0.0005, "{med}");
    }

    /// The incident's shape: 95% fast, 5% timing out. k6 interpolates across the gap.
    #[test]
    fn a_bimodal_p95_matches_k6_within_its_precision() {
        let mut rng = fastrand::Rng::with_seed(7);
        let mut values: Vec<u64> = (0..950).map(|_| rng.u64(15_000..25_000)).collect();
        values.extend((0..50).map(|_| rng.u64(1_500_000..2_500_000)));
        let t = trend(&values);
        values.sort_unstable();
        let pos = 0.95 * 999.0;
        let l = pos as usize;
        let exact =
            (values[l] as f64 + (values[l + 1] - values[l]) as f64 * (pos - l as f64)) / 1000.0;
        let got = t.quantile_ms(0.95).unwrap();
        assert!(exact > 90.0, "the gap is interpolated: {exact}");
        assert!((got - exact).abs() / exact < 0.001, "{got} vs k6's {exact}");
    }

    #[test]
    fn merged_trends_keep_the_extremes() {
        let mut a = trend(&[10, 20]);
        a.add(&trend(&[5, 30]));
        a.add(&Trend::default());
        assert_eq!(
            (a.min_ms(), a.max_ms(), a.len()),
            (Some(0.005), Some(0.03), 4)
        );
        let b = a.buckets_ms();
        assert_eq!(b.first(), Some(&(0.005, 1)));
        assert_eq!(b.last(), Some(&(0.03, 1)));
        assert_eq!(b.iter().map(|x| x.1).sum::<u64>(), 4);
    }
}
