use super::events::EventKind;
use super::*;
use crate::config::Config;

fn state(weights: &[(u32, Option<Role>)]) -> ClusterState {
    state_with(weights, "")
}

fn state_with(weights: &[(u32, Option<Role>)], extra: &str) -> ClusterState {
    let mut text = format!(
        "[[clusters]]\nname='c'\nlisten='127.0.0.1:1'\n{extra}\n[[clusters.users]]\nname='u'\npassword='p'\n",
    );
    for (i, (w, r)) in weights.iter().enumerate() {
        text += &format!(
            "[[clusters.nodes]]\naddr='127.0.0.1:{}'\nweight={w}\n",
            1000 + i
        );
        if let Some(r) = r {
            let r = if *r == Role::Primary {
                "primary"
            } else {
                "replica"
            };
            text += &format!("role='{r}'\n");
        }
    }
    let c = Config::parse(&text, "t").expect("config");
    ClusterState::new(&c.clusters[0])
}

#[test]
fn swrr_follows_weights_exactly() {
    let s = state(&[
        (1, Some(Role::Primary)),
        (1, Some(Role::Replica)),
        (3, Some(Role::Replica)),
    ]);
    let snap = s.load();
    let mut p = ReplicaPicker::default();
    let mut counts = [0; 3];
    for _ in 0..100 {
        counts[p.pick(&snap, None).expect("replica")] += 1;
    }
    assert_eq!(counts, [0, 25, 75]);
}

#[test]
fn down_and_drained_replicas_are_skipped() {
    let s = state(&[
        (1, Some(Role::Primary)),
        (0, Some(Role::Replica)),
        (2, Some(Role::Replica)),
    ]);
    s.report_failure(2, "test");
    let snap = s.load();
    assert_eq!(snap.generation, 1);
    assert_eq!(ReplicaPicker::default().pick(&snap, None), None);
    assert!(snap.primary().is_some());
}

#[test]
fn two_primaries_means_no_primary() {
    let s = state(&[(1, Some(Role::Primary)), (1, None)]);
    s.update(|n| n[1].role = Some(Role::Primary));
    assert!(s.load().primary().is_none());
}

/// A primary at `p_lsn` and two replicas at the given replay positions.
fn probed(s: &ClusterState, p_lsn: u64, r1: u64, r2: u64) {
    let now = std::time::Instant::now();
    s.update(|n| {
        for (i, lsn) in [p_lsn, r1, r2].into_iter().enumerate() {
            n[i].health = Health::Up;
            n[i].lsn = lsn;
            n[i].probed_at = Some(now);
        }
        n[0].role = Some(Role::Primary);
        n[1].role = Some(Role::Replica);
        n[2].role = Some(Role::Replica);
    });
}

#[test]
fn lag_in_bytes_ejects_with_hysteresis() {
    let s = state_with(
        &[(1, None), (1, None), (1, None)],
        "max_lag_bytes = 1000\nslow_start = '0s'",
    );
    probed(&s, 10_000, 10_000, 8_000);
    let snap = s.load();
    assert_eq!(snap.nodes[2].lag_bytes, Some(2_000));
    assert!(snap.nodes[2].lagging && !snap.nodes[2].serves_reads());
    assert_eq!(snap.nodes[2].not_serving_reason(), Some("lagging"));
    assert!(!snap.nodes[1].lagging);
    // Under the limit but above half of it: still out (hysteresis).
    probed(&s, 10_000, 10_000, 9_200);
    assert!(s.load().nodes[2].lagging);
    probed(&s, 10_000, 10_000, 9_600);
    assert!(!s.load().nodes[2].lagging);
    assert_eq!(s.events.count(EventKind::LagEjected), 1);
    assert_eq!(s.events.count(EventKind::LagReadmitted), 1);
}

#[test]
fn floor_keeps_the_least_lagging_replica_serving() {
    let s = state_with(
        &[(1, None), (1, None), (1, None)],
        "max_lag_bytes = 100\nmin_serving_replicas = 1\nslow_start = '0s'",
    );
    probed(&s, 10_000, 9_000, 5_000);
    let snap = s.load();
    assert!(snap.nodes[1].lagging && snap.nodes[2].lagging);
    assert!(snap.nodes[1].kept_by_floor, "the least lagging one is kept");
    assert!(!snap.nodes[2].kept_by_floor);
    let mut p = ReplicaPicker::default();
    assert_eq!(p.pick(&snap, None), Some(1));
}

#[test]
fn read_your_writes_needs_the_replay_position() {
    let s = state_with(&[(1, None), (1, None), (1, None)], "slow_start = '0s'");
    probed(&s, 10_000, 10_000, 8_000);
    let snap = s.load();
    let mut p = ReplicaPicker::default();
    for _ in 0..4 {
        assert_eq!(p.pick(&snap, Some(9_000)), Some(1));
    }
    assert_eq!(p.pick(&snap, Some(20_000)), None);
    assert!(ReplicaPicker::any_serving(&snap));
}

#[test]
fn slow_start_ramps_a_returning_replica() {
    let s = state_with(&[(1, None), (10, None), (10, None)], "slow_start = '1h'");
    probed(&s, 1, 1, 1);
    assert_eq!(
        s.load().nodes[1].effective_weight,
        1000,
        "first sight: full weight"
    );
    s.report_failure(1, "test");
    probed(&s, 1, 1, 1);
    let w = s.load().nodes[1].effective_weight;
    assert!((100..200).contains(&w), "starts at about 10 %: {w}");
}

#[test]
fn a_former_primary_on_an_older_timeline_is_fenced() {
    let s = state(&[(1, None), (1, None), (1, None)]);
    probed(&s, 1, 1, 1);
    s.update(|n| {
        n[0].timeline = Some(1);
        n[1].role = Some(Role::Primary);
        n[1].timeline = Some(2);
    });
    let snap = s.load();
    assert!(snap.nodes[0].fenced);
    assert!(!snap.split_brain);
    assert_eq!(snap.primary().map(|p| p.id), Some(1));
    assert_eq!(s.events.count(EventKind::Fenced), 1);
}

#[test]
fn two_primaries_on_one_timeline_are_a_split_brain() {
    let s = state(&[(1, None), (1, None), (1, None)]);
    probed(&s, 1, 1, 1);
    s.update(|n| {
        n[0].timeline = Some(2);
        n[1].role = Some(Role::Primary);
        n[1].timeline = Some(2);
    });
    let snap = s.load();
    assert!(snap.split_brain);
    assert!(snap.primary().is_none());
    assert_eq!(s.events.count(EventKind::SplitBrain), 1);
}

#[test]
fn failover_off_does_not_fence() {
    let s = state_with(
        &[(1, None), (1, None), (1, None)],
        "[clusters.failover]\nmode = 'off'",
    );
    probed(&s, 1, 1, 1);
    s.update(|n| {
        n[0].timeline = Some(1);
        n[1].role = Some(Role::Primary);
        n[1].timeline = Some(2);
    });
    assert!(!s.load().nodes[0].fenced);
    assert!(s.load().split_brain);
}

#[test]
fn lag_compares_with_a_primary_sample_no_newer_than_the_replica() {
    let s = state_with(
        &[(1, None), (1, None), (1, None)],
        "max_lag_bytes = 1000\nslow_start = '0s'",
    );
    probed(&s, 10_000, 10_000, 10_000);
    // The primary is probed again just after a burst of writes, after the replicas were.
    let later = std::time::Instant::now() + std::time::Duration::from_millis(5);
    s.update(|n| {
        n[0].prev_lsn = n[0].lsn;
        n[0].prev_probed_at = n[0].probed_at;
        n[0].lsn = 50_000;
        n[0].probed_at = Some(later);
    });
    let snap = s.load();
    assert_eq!(
        snap.nodes[1].lag_bytes,
        Some(0),
        "not judged against a newer primary sample"
    );
    assert!(!snap.nodes[1].lagging);
}
