//! Runs guests as a DAG with bounded concurrency: a guest starts when its prerequisites
//! succeeded; a failed guest marks its dependents skipped while independent guests go on;
//! cancellation stops dispatching and lets in-flight guests finish.
//!
//! Futures are polled on the caller's task (`FuturesUnordered`), so they may borrow the engine;
//! the concurrency is I/O concurrency, which is all Proxmox calls need.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use crate::types::GuestId;

use super::CancelToken;

/// How a scheduled guest ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Slot<T> {
    /// It ran and produced `T`.
    Ran(T),
    /// A prerequisite did not succeed.
    Skipped(GuestId),
    /// Cancelled before it was dispatched.
    Cancelled,
}

/// Run `ids` respecting `deps` (id -> ids that must succeed first; ids outside `ids` are
/// ignored), at most `jobs` at a time, in the order of `ids` when several are ready.
pub(crate) async fn run_dag<T, F, Fut>(
    ids: &[GuestId],
    deps: &BTreeMap<GuestId, Vec<GuestId>>,
    jobs: usize,
    cancel: &CancelToken,
    ok: impl Fn(&T) -> bool,
    mut run: F,
) -> BTreeMap<GuestId, Slot<T>>
where
    F: FnMut(GuestId) -> Fut,
    Fut: Future<Output = (GuestId, T)>,
{
    let set: BTreeSet<GuestId> = ids.iter().copied().collect();
    let mut pending: Vec<GuestId> = ids.to_vec();
    let mut results: BTreeMap<GuestId, Slot<T>> = BTreeMap::new();
    let mut good: BTreeSet<GuestId> = BTreeSet::new();
    let mut running = FuturesUnordered::new();
    let jobs = jobs.max(1);
    loop {
        // Settle what can be settled: skips propagate, ready guests dispatch.
        let mut progressed = true;
        while progressed {
            progressed = false;
            let mut i = 0;
            while i < pending.len() {
                let id = pending[i];
                let reqs: Vec<GuestId> = deps
                    .get(&id)
                    .map(|d| {
                        d.iter()
                            .copied()
                            .filter(|d| set.contains(d) && *d != id)
                            .collect()
                    })
                    .unwrap_or_default();
                if let Some(bad) = reqs
                    .iter()
                    .find(|d| results.contains_key(d) && !good.contains(d))
                {
                    results.insert(id, Slot::Skipped(*bad));
                    pending.remove(i);
                    progressed = true;
                    continue;
                }
                if reqs.iter().all(|d| good.contains(d)) && running.len() < jobs {
                    if cancel.is_cancelled() {
                        results.insert(id, Slot::Cancelled);
                    } else {
                        running.push(run(id));
                    }
                    pending.remove(i);
                    progressed = true;
                    continue;
                }
                i += 1;
            }
        }
        match running.next().await {
            Some((id, v)) => {
                if ok(&v) {
                    good.insert(id);
                }
                results.insert(id, Slot::Ran(v));
            }
            None => {
                // Nothing running and nothing dispatchable: whatever is left waits on a
                // guest outside the run that never finishes (a cycle); skip it.
                for id in pending.drain(..) {
                    results.insert(id, Slot::Cancelled);
                }
                return results;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u32) -> GuestId {
        GuestId::new(u64::from(n)).unwrap()
    }

    #[tokio::test]
    async fn failure_skips_dependents_only() {
        let ids = [id(100), id(101), id(102), id(103)];
        let deps = BTreeMap::from([(id(101), vec![id(100)]), (id(102), vec![id(101)])]);
        let r = run_dag(
            &ids,
            &deps,
            2,
            &CancelToken::default(),
            |ok: &bool| *ok,
            |i| async move { (i, i != id(100)) },
        )
        .await;
        assert_eq!(r[&id(100)], Slot::Ran(false));
        assert_eq!(r[&id(101)], Slot::Skipped(id(100)));
        assert_eq!(r[&id(102)], Slot::Skipped(id(101)));
        assert_eq!(r[&id(103)], Slot::Ran(true));
    }

    #[tokio::test]
    async fn cancelled_runs_dispatch_nothing() {
        let c = CancelToken::default();
        c.cancel();
        let r = run_dag(
            &[id(100)],
            &BTreeMap::new(),
            2,
            &c,
            |_: &bool| true,
            |i| async move { (i, true) },
        )
        .await;
        assert_eq!(r[&id(100)], Slot::Cancelled);
    }
}
