//! Runs guests as a DAG with bounded concurrency: a guest starts when its prerequisites
//! succeeded; a failed guest marks its dependents skipped while independent guests go on;
//! cancellation stops dispatching and lets in-flight guests finish.
//!
//! Futures are polled on the caller's task (`FuturesUnordered`), so they may borrow the engine;
//! the concurrency is I/O concurrency, which is all Proxmox calls need.

use std::collections::BTreeMap;
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
    // Positions in `ids` and a state per position: the ready scan below runs after every
    // finished guest, so it must neither allocate nor search maps (with 1,000 guests that
    // made a no-op `up` spend most of its time here).
    let index: BTreeMap<GuestId, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    let reqs: Vec<Vec<usize>> = ids
        .iter()
        .map(|id| {
            deps.get(id)
                .map(|d| {
                    d.iter()
                        .filter(|d| *d != id)
                        .filter_map(|d| index.get(d).copied())
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    let mut state = vec![State::Waiting; ids.len()];
    let mut pending: Vec<usize> = (0..ids.len()).collect();
    let mut results: BTreeMap<GuestId, Slot<T>> = BTreeMap::new();
    let mut running = FuturesUnordered::new();
    let jobs = jobs.max(1);
    loop {
        // Settle what can be settled: skips propagate, ready guests dispatch.
        let mut progressed = true;
        while progressed {
            progressed = false;
            let mut i = 0;
            while i < pending.len() {
                let p = pending[i];
                if let Some(bad) = reqs[p].iter().find(|d| state[**d] == State::Failed) {
                    results.insert(ids[p], Slot::Skipped(ids[*bad]));
                    state[p] = State::Failed;
                    pending.remove(i);
                    progressed = true;
                    continue;
                }
                if running.len() < jobs && reqs[p].iter().all(|d| state[*d] == State::Succeeded) {
                    if cancel.is_cancelled() {
                        results.insert(ids[p], Slot::Cancelled);
                        state[p] = State::Failed;
                    } else {
                        state[p] = State::Running;
                        running.push(run(ids[p]));
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
                if let Some(p) = index.get(&id) {
                    state[*p] = if ok(&v) {
                        State::Succeeded
                    } else {
                        State::Failed
                    };
                }
                results.insert(id, Slot::Ran(v));
            }
            None => {
                // Nothing running and nothing dispatchable: whatever is left waits on a
                // guest outside the run that never finishes (a cycle); skip it.
                for p in pending.drain(..) {
                    results.insert(ids[p], Slot::Cancelled);
                }
                return results;
            }
        }
    }
}

/// Where a guest of [`run_dag`] stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not dispatched yet.
    Waiting,
    /// Dispatched, not finished.
    Running,
    /// Ran and succeeded: its dependents may run.
    Succeeded,
    /// Failed, skipped or cancelled: its dependents are skipped.
    Failed,
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
    async fn ready_guests_dispatch_in_order_within_the_job_limit() {
        let ids = [id(103), id(100), id(102), id(101)];
        // 999 is outside the run: ignored
        let deps = BTreeMap::from([(id(102), vec![id(101), id(999)])]);
        let order = std::sync::Mutex::new(Vec::new());
        let r = run_dag(
            &ids,
            &deps,
            1,
            &CancelToken::default(),
            |_: &bool| true,
            |i| {
                order.lock().unwrap().push(i);
                async move { (i, true) }
            },
        )
        .await;
        assert_eq!(
            *order.lock().unwrap(),
            vec![id(103), id(100), id(101), id(102)]
        );
        assert!(r.values().all(|s| *s == Slot::Ran(true)));
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
