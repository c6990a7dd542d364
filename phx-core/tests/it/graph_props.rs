//! The dependency graph on random small DAGs: orders respect every edge, are deterministic,
//! teardown is the reverse relation, and any edge that closes a cycle is caught.

use std::collections::{BTreeMap, BTreeSet};

use phx_core::graph::DepGraph;
use phx_core::types::GuestId;
use proptest::prelude::*;

/// A DAG as `(id, prerequisites)` pairs, plus some targets (maybe repeated, in any order).
#[derive(Debug, Clone)]
struct Dag {
    edges: Vec<(GuestId, Vec<GuestId>)>,
    targets: Vec<GuestId>,
}

/// Nodes get shuffled ids, so the topological order is unrelated to id order; a node only
/// depends on nodes earlier in the (hidden) topological order, so there is no cycle.
fn dag() -> impl Strategy<Value = Dag> {
    (1usize..24)
        .prop_flat_map(|n| {
            let ids = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
            let prereqs = prop::collection::vec(prop::collection::vec(0..n, 0..4), n);
            let targets = prop::collection::vec(0..n, 1..8);
            (ids, prereqs, targets)
        })
        .prop_map(|(perm, prereqs, targets)| {
            let id = |i: usize| GuestId::new(100 + 7 * perm[i] as u64).unwrap();
            let edges = prereqs
                .iter()
                .enumerate()
                .map(|(i, ps)| {
                    (
                        id(i),
                        ps.iter().filter(|p| **p < i).map(|p| id(*p)).collect(),
                    )
                })
                .collect();
            Dag {
                edges,
                targets: targets.into_iter().map(id).collect(),
            }
        })
}

/// Every node reachable from `from` through prerequisites, `from` included.
fn closure(g: &DepGraph, from: GuestId) -> BTreeSet<GuestId> {
    let mut seen = BTreeSet::from([from]);
    let mut stack = vec![from];
    while let Some(n) = stack.pop() {
        for p in g.prerequisites(n) {
            if seen.insert(*p) {
                stack.push(*p);
            }
        }
    }
    seen
}

fn positions(order: &[GuestId]) -> BTreeMap<GuestId, usize> {
    order.iter().enumerate().map(|(i, id)| (*id, i)).collect()
}

proptest! {
    #[test]
    fn order_puts_every_prerequisite_before_its_dependent(d in dag()) {
        let g = DepGraph::from_edges(d.edges.clone());
        let order = g.order(&d.targets).unwrap();
        let pos = positions(&order);
        prop_assert_eq!(pos.len(), order.len(), "no guest appears twice");
        for id in &order {
            for p in g.prerequisites(*id) {
                prop_assert!(pos[p] < pos[id], "{} must come before {}", p, id);
            }
        }
        // Exactly the targets and their transitive prerequisites.
        let expected: BTreeSet<GuestId> = d.targets.iter().flat_map(|t| closure(&g, *t)).collect();
        prop_assert_eq!(pos.keys().copied().collect::<BTreeSet<_>>(), expected);
    }

    #[test]
    fn order_is_deterministic(d in dag()) {
        let g = DepGraph::from_edges(d.edges.clone());
        let again = DepGraph::from_edges(d.edges.clone());
        let order = g.order(&d.targets).unwrap();
        prop_assert_eq!(&order, &g.order(&d.targets).unwrap());
        prop_assert_eq!(&order, &again.order(&d.targets).unwrap());
    }

    #[test]
    fn teardown_order_is_the_reverse_relation(d in dag()) {
        let g = DepGraph::from_edges(d.edges.clone());
        let teardown = g.teardown_order(&d.targets).unwrap();
        let targets: BTreeSet<GuestId> = d.targets.iter().copied().collect();
        prop_assert_eq!(teardown.iter().copied().collect::<BTreeSet<_>>(), targets.clone());
        prop_assert_eq!(teardown.len(), targets.len(), "each target once");
        let pos = positions(&teardown);
        for a in &targets {
            for b in closure(&g, *a).iter().filter(|b| *b != a && targets.contains(*b)) {
                // `a` needs `b`: `a` goes first on the way down.
                prop_assert!(pos[a] < pos[b], "{} must be torn down before {}", a, b);
            }
        }
    }

    #[test]
    fn dependents_are_the_inverse_of_prerequisites(d in dag()) {
        let g = DepGraph::from_edges(d.edges.clone());
        let nodes: Vec<GuestId> = g.nodes().collect();
        for a in &nodes {
            let dependents: BTreeSet<GuestId> = g.dependents(*a).into_iter().collect();
            let expected: BTreeSet<GuestId> =
                nodes.iter().filter(|b| *b != a && closure(&g, **b).contains(a)).copied().collect();
            prop_assert_eq!(dependents, expected);
        }
    }

    #[test]
    fn back_edge_closing_a_cycle_is_always_detected(d in dag(), pick in any::<prop::sample::Index>(), back in any::<prop::sample::Index>()) {
        let g = DepGraph::from_edges(d.edges.clone());
        prop_assert_eq!(g.find_cycle(), None);
        // `from` needs `to` (directly or not, or `to` is `from`); `to` -> `from` closes a cycle.
        let nodes: Vec<GuestId> = g.nodes().collect();
        let from = *pick.get(&nodes);
        let reachable: Vec<GuestId> = closure(&g, from).into_iter().collect();
        let to = *back.get(&reachable);
        let mut edges = d.edges.clone();
        edges.push((to, vec![from]));
        let cyclic = DepGraph::from_edges(edges);

        let cycle = cyclic.find_cycle().expect("the cycle is found");
        // The reported members really form a cycle, each needing the next.
        let members = &cycle.0;
        prop_assert!(!members.is_empty());
        for (i, m) in members.iter().enumerate() {
            let next = members[(i + 1) % members.len()];
            prop_assert!(cyclic.prerequisites(*m).contains(&next), "{} does not need {}", m, next);
        }
        prop_assert!(cyclic.order(&[from]).is_err());
        prop_assert!(cyclic.order(&nodes).is_err());
        prop_assert!(cyclic.teardown_order(&[to]).is_err());
    }
}
