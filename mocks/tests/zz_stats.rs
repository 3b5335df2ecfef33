use tiersync_mocks::generator::{generate, GenConfig};
#[test]
fn stats() {
    let t = std::time::Instant::now();
    let store = generate(&GenConfig::default());
    let el = t.elapsed();
    let mut per = std::collections::HashMap::new();
    for o in &store.orders {
        if let Some(id) = o.customer_id {
            *per.entry(id).or_insert(0u64) += 1;
        }
    }
    let one = per.values().filter(|&&n| n == 1).count();
    let mut v: Vec<u64> = per.values().cloned().collect();
    v.sort();
    println!(
        "STATS orders={} one={} max={} p90={} p99={} time={:?}",
        store.orders.len(),
        one,
        v[v.len() - 1],
        v[v.len() * 9 / 10],
        v[v.len() * 99 / 100],
        el
    );
}
