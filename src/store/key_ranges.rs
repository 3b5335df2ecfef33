//! Cutting a tree's key space into ranges that separate threads can scan: sled iterators are
//! single-threaded, and the daily recalculation reads every customer.
//!
//! sled keeps no key counts, so the cut points are interpolated between the first and last
//! key: after their common prefix, the next eight bytes are read as a big-endian number and
//! the span is divided evenly. Customer GIDs share a prefix and end in decimal digits, so the
//! ranges come out close to even; an uneven cut only costs parallelism, never a key.

use std::ops::Bound;

/// A key range for `Tree::range`.
pub(super) type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Up to `parts` consecutive ranges that together cover every key (ranges are dropped when
/// the keys leave too little room to cut).
pub(super) fn key_ranges(first: &[u8], last: &[u8], parts: usize) -> Vec<KeyRange> {
    let mut cuts = cut_points(first, last, parts);
    cuts.dedup();
    let mut ranges = Vec::with_capacity(cuts.len() + 1);
    let mut start = Bound::Unbounded;
    for cut in cuts {
        ranges.push((start, Bound::Excluded(cut.clone())));
        start = Bound::Included(cut);
    }
    ranges.push((start, Bound::Unbounded));
    ranges
}

/// `parts - 1` increasing keys in `(first, last]`, fewer when the span is too narrow.
fn cut_points(first: &[u8], last: &[u8], parts: usize) -> Vec<Vec<u8>> {
    if parts < 2 || first >= last {
        return Vec::new();
    }
    let prefix = first.iter().zip(last).take_while(|(a, b)| a == b).count();
    let number = |key: &[u8]| {
        let mut bytes = [0u8; 8];
        for (slot, b) in bytes.iter_mut().zip(key.iter().skip(prefix)) {
            *slot = *b;
        }
        u128::from(u64::from_be_bytes(bytes))
    };
    let (low, high) = (number(first), number(last));
    let step = (high - low) / parts as u128;
    if step == 0 {
        return Vec::new();
    }
    (1..parts as u128)
        .map(|i| {
            let value = u64::try_from(low + step * i).expect("between two u64 values");
            let mut key = first[..prefix].to_vec();
            key.extend_from_slice(&value.to_be_bytes());
            key
        })
        .filter(|key| key.as_slice() > first && key.as_slice() <= last)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::RangeBounds;

    fn gid(n: u64) -> Vec<u8> {
        format!("gid://shopify/Customer/{n}").into_bytes()
    }

    /// Which range holds `key` (exactly one must).
    fn owner(ranges: &[KeyRange], key: &[u8]) -> usize {
        let owners: Vec<usize> = ranges
            .iter()
            .enumerate()
            .filter(|(_, r)| r.contains(&key.to_vec()))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(owners.len(), 1, "{:?} is in ranges {owners:?}", key);
        owners[0]
    }

    #[test]
    fn gids_split_into_nearly_even_ranges() {
        let keys: Vec<Vec<u8>> = (0..100_000u64)
            .map(|i| gid(7_000_000_000_000 + i))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        let ranges = key_ranges(&sorted[0], sorted.last().unwrap(), 2);
        assert_eq!(ranges.len(), 2);
        let mut counts = [0usize; 2];
        for key in &keys {
            counts[owner(&ranges, key)] += 1;
        }
        let smaller = counts[0].min(counts[1]) as f64;
        assert!(
            smaller / 100_000.0 > 0.4,
            "ranges should be close to even: {counts:?}"
        );
    }

    #[test]
    fn every_key_has_exactly_one_range_whatever_the_keys() {
        let cases: [(&[u8], &[u8]); 5] = [
            (b"a", b"b"),
            (b"ab", b"abc"),
            (b"", b"\xff\xff"),
            (b"same", b"same"),
            (b"x\x00", b"x\x00\x01"),
        ];
        for (first, last) in cases {
            for parts in 1..5 {
                let ranges = key_ranges(first, last, parts);
                assert!(!ranges.is_empty() && ranges.len() <= parts.max(1));
                for key in [
                    first,
                    last,
                    b"m".as_slice(),
                    b"".as_slice(),
                    b"\xff".as_slice(),
                ] {
                    owner(&ranges, key);
                }
            }
        }
    }
}
