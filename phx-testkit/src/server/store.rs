//! Where the server's cluster lives: in memory, or in a state file shared with the fake
//! executables (`PHX_FAKE_STATE`) under the same exclusive lock, with `/etc/pve/lxc/<id>.conf`
//! rendered to an etc dir (`PHX_FAKE_ETC`) and raw `lxc.*` edits read back from it.

use std::fs::File;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use crate::fake::{self, FakeCluster};

/// The cluster behind the server.
#[derive(Debug)]
pub(crate) enum Store {
    /// Kept in memory (fast; tests).
    Memory(Box<Mutex<FakeCluster>>),
    /// A state file, loaded and saved around every request (atomic writes).
    File {
        state: PathBuf,
        etc: Option<PathBuf>,
    },
}

impl Store {
    /// Run `f` on the cluster; with a state file, under its lock, saving afterwards.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut FakeCluster) -> T) -> std::io::Result<T> {
        match self {
            Store::Memory(m) => {
                let mut c = m.lock().unwrap_or_else(PoisonError::into_inner);
                Ok(f(&mut c))
            }
            Store::File { state, etc } => {
                let lock_path = state.with_extension("lock");
                let lock = File::options()
                    .create(true)
                    .truncate(false)
                    .read(true)
                    .write(true)
                    .open(&lock_path)?;
                lock.lock()?;
                let mut c = fake::load_state(state).map_err(std::io::Error::other)?;
                if let Some(etc) = etc {
                    fake::read_etc(&mut c, etc);
                }
                let before = etc.as_ref().map(|_| c.clone());
                let r = f(&mut c);
                fake::save_state(state, &c).map_err(std::io::Error::other)?;
                if let Some(etc) = etc {
                    // only the files this request changed: ssh-run commands may be editing others
                    fake::write_etc_since(before.as_ref(), &c, etc)
                        .map_err(std::io::Error::other)?;
                }
                let _ = lock.unlock();
                Ok(r)
            }
        }
    }
}
