use super::*;
use crate::config::Config;

fn state(weights: &[(u32, Option<Role>)]) -> ClusterState {
    let mut text = String::from(
        "[[clusters]]\nname='c'\nlisten='127.0.0.1:1'\n[[clusters.users]]\nname='u'\npassword='p'\n",
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
        counts[p.pick(&snap).expect("replica")] += 1;
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
    assert_eq!(ReplicaPicker::default().pick(&snap), None);
    assert!(snap.primary().is_some());
}

#[test]
fn two_primaries_means_no_primary() {
    let s = state(&[(1, Some(Role::Primary)), (1, None)]);
    s.update(|n| n[1].role = Some(Role::Primary));
    assert!(s.load().primary().is_none());
}
