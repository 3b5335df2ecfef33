//! Record encoding: postcard (compact, fast, serde-driven) for most records, and a hand-rolled
//! compact layout for the per-customer order index, which the daily recalculation reads in
//! full. The store's schema version, not the encoding, carries compatibility.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::StoreError;
use crate::model::OrderFacts;

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(value)
        .map_err(|e| StoreError::Write(format!("cannot encode a record: {e}")))
}

pub(super) fn decode<T: DeserializeOwned>(
    tree: &'static str,
    key: &str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Decode {
        tree,
        key: key.to_string(),
        detail: e.to_string(),
    })
}

// ---- the per-customer order index ---------------------------------------------------------
//
// A `customer_orders` value is every order of one customer, sorted by order GID:
//
//   varint count, then per order:
//     u8 flags   bit 0: the order counts; bit 1: the id is `gid://shopify/Order/<n>` with a
//                canonical decimal n (stored as a varint), else varint length + UTF-8 bytes;
//                bit 2: created_at has a sub-second part (varint nanoseconds follow the
//                seconds); bit 3: net is compact (u8 scale + zigzag varint i64 mantissa),
//                else rust_decimal's 16-byte `serialize()` form
//     id, zigzag varint created_at seconds since the epoch, [nanoseconds], net
//
// About 16 bytes per order for typical Shopify data.

const ORDER_GID_PREFIX: &str = "gid://shopify/Order/";
const COUNTS: u8 = 1;
const NUMERIC_ID: u8 = 2;
const NANOS: u8 = 4;
const COMPACT_NET: u8 = 8;

/// One order in a customer's index entry.
pub(super) type IndexedOrder = (String, OrderFacts);

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn numeric_order_id(id: &str) -> Option<u64> {
    canonical_number(id, ORDER_GID_PREFIX)
}

/// `n` of `<prefix><n>` when `n` is a canonical decimal u64 (so it round-trips).
fn canonical_number(id: &str, prefix: &str) -> Option<u64> {
    let digits = id.strip_prefix(prefix)?;
    let n: u64 = digits.parse().ok()?;
    // Only canonical forms round-trip ("007" or "+7" would not).
    (digits.len() == decimal_len(n) && digits.bytes().all(|b| b.is_ascii_digit())).then_some(n)
}

fn decimal_len(mut n: u64) -> usize {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

// ---- the orders tree -----------------------------------------------------------------------
//
// The `orders` tree only answers "is this order new or changed, and whose was it?" (the facts
// live in `customer_orders`), so it keeps a fingerprint and the customer, not the order:
//
//   key:   0x01 + u64 big-endian for `gid://shopify/Order/<n>` (canonical n), else 0x00 + the id
//   value: u8 tag (0 no customer, 1 `gid://shopify/Customer/<n>` as a varint n, 2 varint
//          length + UTF-8 customer id), then the order's fingerprint as 8 bytes little-endian
//
// About 20 bytes an order instead of ~200: sled's memory at open grows with the store's size.

const CUSTOMER_GID_PREFIX: &str = "gid://shopify/Customer/";

/// What the store remembers of an order it has seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SeenOrder {
    /// The customer GID the order was stored under (`None`: a guest checkout). When a later
    /// read names another customer, the order's facts leave this one's index and this one is
    /// re-evaluated.
    pub customer_id: Option<String>,
    /// `OrderRecord::fingerprint` when stored: an order seen again with the same fingerprint and
    /// customer changes nothing.
    pub fingerprint: u64,
}

/// The `orders` tree key of an order GID.
pub(super) fn order_key(id: &str) -> Vec<u8> {
    match numeric_order_id(id) {
        Some(n) => {
            let mut key = Vec::with_capacity(9);
            key.push(1);
            key.extend_from_slice(&n.to_be_bytes());
            key
        }
        None => {
            let mut key = Vec::with_capacity(1 + id.len());
            key.push(0);
            key.extend_from_slice(id.as_bytes());
            key
        }
    }
}

pub(super) fn encode_seen_order(seen: &SeenOrder) -> Vec<u8> {
    let mut out = Vec::with_capacity(18);
    match seen.customer_id.as_deref() {
        None => out.push(0),
        Some(id) => match canonical_number(id, CUSTOMER_GID_PREFIX) {
            Some(n) => {
                out.push(1);
                put_varint(&mut out, n);
            }
            None => {
                out.push(2);
                put_varint(&mut out, id.len() as u64);
                out.extend_from_slice(id.as_bytes());
            }
        },
    }
    out.extend_from_slice(&seen.fingerprint.to_le_bytes());
    out
}

pub(super) fn decode_seen_order(key: &str, bytes: &[u8]) -> Result<SeenOrder, StoreError> {
    let corrupt = || StoreError::Decode {
        tree: "orders",
        key: key.to_string(),
        detail: "malformed order entry".into(),
    };
    let mut reader = Reader { bytes, at: 0 };
    let customer_id = match reader.byte().ok_or_else(corrupt)? {
        0 => None,
        1 => Some(format!(
            "{CUSTOMER_GID_PREFIX}{}",
            reader.varint().ok_or_else(corrupt)?
        )),
        2 => {
            let len =
                usize::try_from(reader.varint().ok_or_else(corrupt)?).map_err(|_| corrupt())?;
            let id = reader.take(len).ok_or_else(corrupt)?;
            Some(String::from_utf8(id.to_vec()).map_err(|_| corrupt())?)
        }
        _ => return Err(corrupt()),
    };
    let fingerprint = reader
        .take(8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(corrupt)?;
    if reader.at != bytes.len() {
        return Err(corrupt());
    }
    Ok(SeenOrder {
        customer_id,
        fingerprint,
    })
}

/// Encodes a customer's orders (sorted by id, as [`upsert_order`] keeps them).
pub(super) fn encode_customer_orders(orders: &[IndexedOrder]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + orders.len() * 20);
    put_varint(&mut out, orders.len() as u64);
    for (id, facts) in orders {
        let numeric = numeric_order_id(id);
        let nanos = facts.created_at.timestamp_subsec_nanos();
        let mantissa = i64::try_from(facts.net.mantissa()).ok();
        // -0 is kept exactly in the 16-byte form.
        let compact = mantissa.filter(|m| *m != 0 || !facts.net.is_sign_negative());
        let mut flags = 0;
        if facts.counts {
            flags |= COUNTS;
        }
        if numeric.is_some() {
            flags |= NUMERIC_ID;
        }
        if nanos != 0 {
            flags |= NANOS;
        }
        if compact.is_some() {
            flags |= COMPACT_NET;
        }
        out.push(flags);
        match numeric {
            Some(n) => put_varint(&mut out, n),
            None => {
                put_varint(&mut out, id.len() as u64);
                out.extend_from_slice(id.as_bytes());
            }
        }
        put_varint(&mut out, zigzag(facts.created_at.timestamp()));
        if nanos != 0 {
            put_varint(&mut out, u64::from(nanos));
        }
        match compact {
            Some(m) => {
                out.push(facts.net.scale() as u8);
                put_varint(&mut out, zigzag(m));
            }
            None => out.extend_from_slice(&facts.net.serialize()),
        }
    }
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let slice = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(slice)
    }
    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    /// One order; the id is skipped unless `id` is given.
    fn order(&mut self, id: Option<&mut String>) -> Option<OrderFacts> {
        let flags = self.byte()?;
        if flags & NUMERIC_ID != 0 {
            let n = self.varint()?;
            if let Some(id) = id {
                use std::fmt::Write;
                id.clear();
                id.push_str(ORDER_GID_PREFIX);
                write!(id, "{n}").ok()?;
            }
        } else {
            let len = usize::try_from(self.varint()?).ok()?;
            let bytes = self.take(len)?;
            if let Some(id) = id {
                id.clear();
                id.push_str(std::str::from_utf8(bytes).ok()?);
            }
        }
        let secs = unzigzag(self.varint()?);
        let nanos = if flags & NANOS != 0 {
            u32::try_from(self.varint()?).ok()?
        } else {
            0
        };
        let created_at: DateTime<Utc> = DateTime::from_timestamp(secs, nanos)?;
        let net = if flags & COMPACT_NET != 0 {
            let scale = u32::from(self.byte()?);
            let mantissa = unzigzag(self.varint()?);
            Decimal::try_from_i128_with_scale(i128::from(mantissa), scale).ok()?
        } else {
            Decimal::deserialize(self.take(16)?.try_into().ok()?)
        };
        Some(OrderFacts {
            created_at,
            net,
            counts: flags & COUNTS != 0,
        })
    }
}

fn corrupt(key: &str) -> StoreError {
    StoreError::Decode {
        tree: "customer_orders",
        key: key.to_string(),
        detail: "malformed order index entry".into(),
    }
}

/// Decodes a customer's orders with their ids.
pub(super) fn decode_customer_orders(
    key: &str,
    bytes: &[u8],
) -> Result<Vec<IndexedOrder>, StoreError> {
    let mut reader = Reader { bytes, at: 0 };
    let count = reader.varint().ok_or_else(|| corrupt(key))?;
    let mut out = Vec::with_capacity(count.min(bytes.len() as u64) as usize);
    for _ in 0..count {
        let mut id = String::new();
        let facts = reader.order(Some(&mut id)).ok_or_else(|| corrupt(key))?;
        out.push((id, facts));
    }
    if reader.at != bytes.len() {
        return Err(corrupt(key));
    }
    Ok(out)
}

/// Decodes only the facts of a customer's orders into `out` (cleared first).
pub(super) fn decode_customer_facts(
    key: &str,
    bytes: &[u8],
    out: &mut Vec<OrderFacts>,
) -> Result<(), StoreError> {
    out.clear();
    let mut reader = Reader { bytes, at: 0 };
    let count = reader.varint().ok_or_else(|| corrupt(key))?;
    out.reserve(count.min(bytes.len() as u64) as usize);
    for _ in 0..count {
        out.push(reader.order(None).ok_or_else(|| corrupt(key))?);
    }
    if reader.at != bytes.len() {
        return Err(corrupt(key));
    }
    Ok(())
}

/// Inserts or replaces one order in a customer's sorted orders. Returns whether anything
/// changed.
pub(super) fn upsert_order(orders: &mut Vec<IndexedOrder>, id: &str, facts: OrderFacts) -> bool {
    match orders.binary_search_by(|(o, _)| o.as_str().cmp(id)) {
        Ok(i) if orders[i].1 == facts => false,
        Ok(i) => {
            orders[i].1 = facts;
            true
        }
        Err(i) => {
            orders.insert(i, (id.to_string(), facts));
            true
        }
    }
}

/// Removes one order from a customer's sorted orders. Returns whether it was there.
pub(super) fn remove_order(orders: &mut Vec<IndexedOrder>, id: &str) -> bool {
    match orders.binary_search_by(|(o, _)| o.as_str().cmp(id)) {
        Ok(i) => {
            orders.remove(i);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn facts(secs: i64, nanos: u32, net: Decimal, counts: bool) -> OrderFacts {
        OrderFacts {
            created_at: Utc.timestamp_opt(secs, nanos).unwrap(),
            net,
            counts,
        }
    }

    #[test]
    fn customer_orders_round_trip_exactly() {
        let orders: Vec<IndexedOrder> = vec![
            (
                "gid://shopify/Order/5000000000123".into(),
                facts(1_780_000_000, 0, Decimal::new(6_599, 2), true),
            ),
            (
                "gid://shopify/Order/007".into(),
                facts(-5, 999_999_999, Decimal::new(-1, 28), false),
            ),
            ("order-without-gid".into(), facts(0, 1, Decimal::MAX, true)),
            (
                "gid://shopify/Order/18446744073709551615".into(),
                facts(1, 0, Decimal::new(0, 3), true),
            ),
            (
                "gid://shopify/Order/1".into(),
                facts(2, 0, -Decimal::ZERO, true),
            ),
        ];
        let bytes = encode_customer_orders(&orders);
        let back = decode_customer_orders("c", &bytes).unwrap();
        assert_eq!(back, orders);
        for ((_, a), (_, b)) in back.iter().zip(&orders) {
            assert_eq!(a.net.serialize(), b.net.serialize(), "exact decimal form");
        }
        let mut only = Vec::new();
        decode_customer_facts("c", &bytes, &mut only).unwrap();
        assert_eq!(only, orders.iter().map(|(_, f)| *f).collect::<Vec<_>>());
        assert!(decode_customer_orders("c", &bytes[..bytes.len() - 1]).is_err());
        assert!(decode_customer_orders("c", &[]).is_err());
        assert!(encode_customer_orders(&[]).len() == 1);
    }

    #[test]
    fn seen_orders_round_trip_and_keys_tell_numeric_from_other_ids() {
        for customer_id in [
            None,
            Some("gid://shopify/Customer/7000000000001".to_string()),
            Some("gid://shopify/Customer/007".to_string()),
            Some("légacy-id".to_string()),
        ] {
            let seen = SeenOrder {
                customer_id,
                fingerprint: 0xDEAD_BEEF_0123_4567,
            };
            let bytes = encode_seen_order(&seen);
            assert_eq!(decode_seen_order("o", &bytes).unwrap(), seen);
            assert!(decode_seen_order("o", &bytes[..bytes.len() - 1]).is_err());
        }
        assert!(decode_seen_order("o", &[9]).is_err());
        assert_eq!(order_key("gid://shopify/Order/5").len(), 9);
        assert_eq!(order_key("gid://shopify/Order/05")[0], 0);
        assert_ne!(
            order_key("gid://shopify/Order/5"),
            order_key("gid://shopify/Order/6")
        );
    }

    #[test]
    fn upsert_keeps_orders_sorted_and_reports_changes() {
        let mut orders = Vec::new();
        let f = facts(10, 0, Decimal::ONE, true);
        assert!(upsert_order(&mut orders, "b", f));
        assert!(upsert_order(&mut orders, "a", f));
        assert!(!upsert_order(&mut orders, "a", f));
        assert!(upsert_order(
            &mut orders,
            "a",
            facts(11, 0, Decimal::ONE, true)
        ));
        assert_eq!(
            orders.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(remove_order(&mut orders, "a"));
        assert!(!remove_order(&mut orders, "a"));
        assert_eq!(orders.len(), 1);
    }
}
