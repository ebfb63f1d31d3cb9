//! GTID positions of MariaDB: parsing, comparing domain by domain, and the bounded wait a
//! promotion or switchover uses to let a replica apply what it received.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::Duration;

/// A GTID position ("0-1-100,1-2-7") as sequence number per domain.
pub fn parse_gtid_pos(text: &str) -> HashMap<u32, u64> {
    text.split(',')
        .filter_map(|g| {
            let mut parts = g.trim().split('-');
            let domain = parts.next()?.parse().ok()?;
            let _server = parts.next()?;
            let seq = parts.next()?.parse().ok()?;
            Some((domain, seq))
        })
        .collect()
}

/// Per domain, the larger sequence number of `a` and `b`.
pub fn gtid_max(a: &HashMap<u32, u64>, b: &HashMap<u32, u64>) -> HashMap<u32, u64> {
    let mut out = a.clone();
    for (&domain, &seq) in b {
        let e = out.entry(domain).or_insert(0);
        *e = (*e).max(seq);
    }
    out
}

/// Orders two GTID positions domain by domain: one that has reached the other in every
/// domain and gone past it in one is ahead. Positions each ahead in some domain have
/// diverged (writes on both sides of an earlier split, or two independent writers): then
/// the one holding more transactions in total counts as ahead, the best guess there is
/// without an operator.
pub fn compare_gtid(a: &HashMap<u32, u64>, b: &HashMap<u32, u64>) -> Ordering {
    let seq = |m: &HashMap<u32, u64>, d: &u32| m.get(d).copied().unwrap_or(0);
    let (mut a_ahead, mut b_ahead) = (false, false);
    for d in a.keys().chain(b.keys()) {
        match seq(a, d).cmp(&seq(b, d)) {
            Ordering::Greater => a_ahead = true,
            Ordering::Less => b_ahead = true,
            Ordering::Equal => {}
        }
    }
    match (a_ahead, b_ahead) {
        (false, false) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (true, true) => a.values().sum::<u64>().cmp(&b.values().sum::<u64>()),
    }
}

/// Transactions `target` holds beyond `applied`, summed over domains.
pub fn transactions_behind(applied: &HashMap<u32, u64>, target: &HashMap<u32, u64>) -> u64 {
    target
        .iter()
        .map(|(d, &seq)| seq.saturating_sub(applied.get(d).copied().unwrap_or(0)))
        .sum()
}

/// `SELECT MASTER_GTID_WAIT('<pos>', <seconds>)`; None when `pos` is empty or holds anything
/// but digits, '-', ',' and spaces (it is spliced into SQL as a literal).
pub fn gtid_wait_sql(pos: &str, wait: Duration) -> Option<String> {
    let pos: String = pos.chars().filter(|c| !c.is_whitespace()).collect();
    if pos.is_empty()
        || !pos
            .chars()
            .all(|c| c.is_ascii_digit() || c == '-' || c == ',')
    {
        return None;
    }
    Some(format!(
        "SELECT MASTER_GTID_WAIT('{pos}', {:.3})",
        wait.as_secs_f64()
    ))
}

/// How long the chosen replica may spend applying what it received before it is promoted
/// anyway: half of `failover.timeout` (at least a second), so that writes that began
/// waiting for a primary when the failover started still find one before they give up.
pub fn catch_up_budget(failover_timeout: Duration) -> Duration {
    (failover_timeout / 2).max(Duration::from_secs(1))
}
