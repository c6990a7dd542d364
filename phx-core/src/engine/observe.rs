//! Observation: what the cluster looks like, read once per plan and cached.
//!
//! One `guests()` call lists every guest with its node and status; per existing guest the
//! planner reads its config and (when a firewall is configured) its firewall file. A converged
//! guest therefore costs at most two reads of its own.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::backend::{
    FirewallState, GuestConfig, GuestSummary, Hypervisor, StorageInfo, VolumeInfo, manager,
};
use crate::error::Result;
use crate::types::{GuestId, GuestKind, NodeName, StorageId};

/// The observed state of one guest.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Cluster listing entry (`None`: absent).
    pub summary: Option<GuestSummary>,
    /// Config, when the guest exists.
    pub config: Option<GuestConfig>,
    /// Firewall file, when a firewall is configured.
    pub firewall: Option<FirewallState>,
}

/// Cached cluster-wide reads for one planning run.
#[derive(Debug)]
pub(crate) struct World<'h> {
    pub hv: &'h dyn Hypervisor,
    pub guests: BTreeMap<GuestId, GuestSummary>,
    pub default_node: NodeName,
    storages: Mutex<BTreeMap<NodeName, Vec<StorageInfo>>>,
    content: Mutex<BTreeMap<(NodeName, StorageId), Vec<VolumeInfo>>>,
    catalogue: Mutex<BTreeMap<NodeName, Vec<String>>>,
    pub reads: AtomicU64,
}

impl<'h> World<'h> {
    pub(crate) async fn load(hv: &'h dyn Hypervisor, node: Option<&NodeName>) -> Result<Self> {
        let guests = hv.guests().await?.into_iter().map(|g| (g.id, g)).collect();
        let (default_node, reads) = match node {
            Some(n) => (n.clone(), 1),
            None => (hv.default_node().await?, 2),
        };
        Ok(Self {
            hv,
            guests,
            default_node,
            storages: Mutex::new(BTreeMap::new()),
            content: Mutex::new(BTreeMap::new()),
            catalogue: Mutex::new(BTreeMap::new()),
            reads: AtomicU64::new(reads),
        })
    }

    /// A world for executing: no cluster listing, only the caches.
    pub(crate) fn for_apply(hv: &'h dyn Hypervisor, default_node: NodeName) -> Self {
        Self {
            hv,
            guests: BTreeMap::new(),
            default_node,
            storages: Mutex::new(BTreeMap::new()),
            content: Mutex::new(BTreeMap::new()),
            catalogue: Mutex::new(BTreeMap::new()),
            reads: AtomicU64::new(0),
        }
    }

    pub(crate) fn read(&self) {
        self.reads(1);
    }

    pub(crate) fn reads(&self, n: u64) {
        self.reads.fetch_add(n, Ordering::Relaxed);
    }

    /// Config and (optionally) firewall of an existing guest.
    pub(crate) async fn observe(
        &self,
        id: GuestId,
        kind: GuestKind,
        want_firewall: bool,
    ) -> Result<Observed> {
        let Some(summary) = self.guests.get(&id).cloned() else {
            return Ok(Observed::default());
        };
        if summary.kind != kind {
            return Ok(Observed {
                summary: Some(summary),
                config: None,
                firewall: None,
            });
        }
        let m = manager(self.hv, kind);
        self.read();
        let config = m.config(&summary.node, id).await?;
        let firewall = if want_firewall {
            self.read();
            Some(m.firewall(&summary.node, id).await?)
        } else {
            None
        };
        Ok(Observed {
            summary: Some(summary),
            config: Some(config),
            firewall,
        })
    }

    pub(crate) async fn storages(&self, node: &NodeName) -> Result<Vec<StorageInfo>> {
        if let Some(s) = self.storages.lock().map_err(poisoned)?.get(node) {
            return Ok(s.clone());
        }
        self.read();
        let s = self.hv.storages(node).await?;
        self.storages
            .lock()
            .map_err(poisoned)?
            .insert(node.clone(), s.clone());
        Ok(s)
    }

    pub(crate) async fn content(
        &self,
        node: &NodeName,
        storage: &StorageId,
        kind: &str,
    ) -> Result<Vec<VolumeInfo>> {
        let key = (node.clone(), storage.clone());
        if let Some(s) = self.content.lock().map_err(poisoned)?.get(&key) {
            return Ok(s.clone());
        }
        self.read();
        let s = self.hv.storage_content(node, storage, Some(kind)).await?;
        self.content
            .lock()
            .map_err(poisoned)?
            .insert(key, s.clone());
        Ok(s)
    }

    pub(crate) async fn catalogue(&self, node: &NodeName) -> Result<Vec<String>> {
        if let Some(s) = self.catalogue.lock().map_err(poisoned)?.get(node) {
            return Ok(s.clone());
        }
        self.read();
        let s = self.hv.available_templates(node).await?;
        self.catalogue
            .lock()
            .map_err(poisoned)?
            .insert(node.clone(), s.clone());
        Ok(s)
    }
}

fn poisoned<T>(_: T) -> crate::Error {
    crate::Error::backend("engine", "internal cache lock poisoned")
}
