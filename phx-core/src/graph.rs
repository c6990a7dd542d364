//! One dependency DAG over container and VM ids (they share a namespace).
//!
//! Edges run from a guest to its prerequisites: `clone_from_ctid`, `clone_from_vmid` and
//! `dependencies`, mixed kinds allowed (CT 901 may depend on VM 1002).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::config::Inventory;
use crate::types::GuestId;

/// A dependency cycle, members in dependency order (`a` needs `b` needs `c` needs `a`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<GuestId>);

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(
            f,
            "dependency cycle: {} -> {}",
            ids.join(" -> "),
            ids.first().map(String::as_str).unwrap_or("")
        )
    }
}

impl std::error::Error for Cycle {}

/// The dependency graph.
#[derive(Debug, Clone, Default)]
pub struct DepGraph {
    prereqs: BTreeMap<GuestId, Vec<GuestId>>,
}

impl DepGraph {
    /// The graph of every guest in the inventory. References to undefined ids are dropped
    /// (the validator reports them).
    pub fn new(inv: &Inventory) -> Self {
        Self::from_edges(inv.guests().map(|g| {
            let mut prereqs = g.prerequisites();
            prereqs.retain(|p| inv.guest(*p).is_some());
            (g.id(), prereqs)
        }))
    }

    /// A graph from `(id, prerequisites)` pairs.
    pub fn from_edges(edges: impl IntoIterator<Item = (GuestId, Vec<GuestId>)>) -> Self {
        let mut prereqs: BTreeMap<GuestId, Vec<GuestId>> = BTreeMap::new();
        for (id, ps) in edges {
            for p in &ps {
                prereqs.entry(*p).or_default();
            }
            let e = prereqs.entry(id).or_default();
            for p in ps {
                if !e.contains(&p) {
                    e.push(p);
                }
            }
        }
        Self { prereqs }
    }

    /// Direct prerequisites of `id`.
    pub fn prerequisites(&self, id: GuestId) -> &[GuestId] {
        self.prereqs.get(&id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Direct dependents of `id`, sorted.
    pub fn direct_dependents(&self, id: GuestId) -> Vec<GuestId> {
        self.prereqs
            .iter()
            .filter(|(_, ps)| ps.contains(&id))
            .map(|(k, _)| *k)
            .collect()
    }

    /// Every guest that depends on `id`, directly or transitively, sorted.
    pub fn dependents(&self, id: GuestId) -> Vec<GuestId> {
        let mut seen = BTreeSet::new();
        let mut stack = vec![id];
        while let Some(n) = stack.pop() {
            for d in self.direct_dependents(n) {
                if seen.insert(d) {
                    stack.push(d);
                }
            }
        }
        seen.remove(&id);
        seen.into_iter().collect()
    }

    /// The first cycle found (deterministic: nodes visited in id order).
    pub fn find_cycle(&self) -> Option<Cycle> {
        #[derive(Clone, Copy, PartialEq)]
        enum Color {
            White,
            Gray,
            Black,
        }
        let mut color: BTreeMap<GuestId, Color> =
            self.prereqs.keys().map(|k| (*k, Color::White)).collect();
        for &start in self.prereqs.keys() {
            if color[&start] != Color::White {
                continue;
            }
            // Iterative DFS: (node, next child index); `path` mirrors the gray nodes.
            let mut stack: Vec<(GuestId, usize)> = vec![(start, 0)];
            color.insert(start, Color::Gray);
            while let Some(&mut (node, ref mut i)) = stack.last_mut() {
                let children = self.prerequisites(node);
                if *i < children.len() {
                    let c = children[*i];
                    *i += 1;
                    match color.get(&c).copied().unwrap_or(Color::Black) {
                        Color::White => {
                            color.insert(c, Color::Gray);
                            stack.push((c, 0));
                        }
                        Color::Gray => {
                            let pos = stack.iter().position(|(n, _)| *n == c).unwrap_or(0);
                            return Some(Cycle(stack[pos..].iter().map(|(n, _)| *n).collect()));
                        }
                        Color::Black => {}
                    }
                } else {
                    color.insert(node, Color::Black);
                    stack.pop();
                }
            }
        }
        None
    }

    /// The targets and all their prerequisites, prerequisites first, stable with respect to the
    /// order the targets were given (targets 9990 9991 9992 with 9990 -> 9991 and
    /// 9992 -> 9990 give 9991 9990 9992).
    pub fn order(&self, targets: &[GuestId]) -> Result<Vec<GuestId>, Cycle> {
        let mut done = BTreeSet::new();
        let mut out = Vec::new();
        for &t in targets {
            if done.contains(&t) {
                continue;
            }
            let mut on_path: Vec<GuestId> = Vec::new();
            let mut stack: Vec<(GuestId, usize)> = vec![(t, 0)];
            on_path.push(t);
            while let Some(&mut (node, ref mut i)) = stack.last_mut() {
                let children = self.prerequisites(node);
                if *i < children.len() {
                    let c = children[*i];
                    *i += 1;
                    if done.contains(&c) {
                        continue;
                    }
                    if let Some(pos) = on_path.iter().position(|n| *n == c) {
                        return Err(Cycle(on_path[pos..].to_vec()));
                    }
                    on_path.push(c);
                    stack.push((c, 0));
                } else {
                    stack.pop();
                    on_path.pop();
                    if done.insert(node) {
                        out.push(node);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The targets alone, dependents before their prerequisites (for stop and delete).
    pub fn teardown_order(&self, targets: &[GuestId]) -> Result<Vec<GuestId>, Cycle> {
        let set: BTreeSet<GuestId> = targets.iter().copied().collect();
        let mut order: Vec<GuestId> = self
            .order(targets)?
            .into_iter()
            .filter(|id| set.contains(id))
            .collect();
        order.reverse();
        Ok(order)
    }

    /// Every node, sorted.
    pub fn nodes(&self) -> impl Iterator<Item = GuestId> + '_ {
        self.prereqs.keys().copied()
    }

    /// Graphviz text of the subgraph reachable from `targets` (all nodes when empty).
    pub fn to_dot(&self, inv: &Inventory, targets: &[GuestId]) -> Result<String, Cycle> {
        let ids: Vec<GuestId> = if targets.is_empty() {
            self.nodes().collect()
        } else {
            self.order(targets)?
        };
        let mut s = String::from("digraph phx {\n  rankdir=BT;\n  node [shape=box];\n");
        for id in &ids {
            let (label, shape) = match inv.guest(*id) {
                Some(g) => (
                    format!("{} {}\\n{}", g.kind(), id, g.name()),
                    if g.is_template() { "note" } else { "box" },
                ),
                None => (id.to_string(), "box"),
            };
            s.push_str(&format!("  \"{id}\" [label=\"{label}\", shape={shape}];\n"));
        }
        for id in &ids {
            let clone = inv.guest(*id).and_then(|g| g.clone_source());
            for p in self.prerequisites(*id) {
                let style = if clone == Some(*p) {
                    " [label=\"clone\"]"
                } else {
                    ""
                };
                s.push_str(&format!("  \"{id}\" -> \"{p}\"{style};\n"));
            }
        }
        s.push_str("}\n");
        Ok(s)
    }
}

/// `ids` that should be started, in start order: templates dropped, then by `boot_order`
/// (default 999, VMs included), ties by id.
pub fn boot_order(inv: &Inventory, ids: &[GuestId]) -> Vec<GuestId> {
    let mut v: Vec<(u64, GuestId)> = ids
        .iter()
        .filter_map(|id| inv.guest(*id))
        .filter(|g| !g.is_template())
        .map(|g| (g.boot_order(), g.id()))
        .collect();
    v.sort();
    v.dedup();
    v.into_iter().map(|(_, id)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> GuestId {
        GuestId::new(u64::from(n)).unwrap()
    }

    #[test]
    fn order_is_prerequisites_first_and_stable() {
        let g = DepGraph::from_edges([
            (id(9990), vec![id(9991)]),
            (id(9991), vec![]),
            (id(9992), vec![id(9990)]),
        ]);
        assert_eq!(
            g.order(&[id(9990), id(9991), id(9992)]).unwrap(),
            vec![id(9991), id(9990), id(9992)]
        );
    }

    #[test]
    fn cycle_is_reported_with_every_member() {
        let g = DepGraph::from_edges([
            (id(100), vec![id(101)]),
            (id(101), vec![id(102)]),
            (id(102), vec![id(100)]),
            (id(103), vec![]),
        ]);
        assert_eq!(
            g.find_cycle().unwrap().to_string(),
            "dependency cycle: 100 -> 101 -> 102 -> 100"
        );
        assert!(g.order(&[id(103), id(101)]).is_err());
    }
}
