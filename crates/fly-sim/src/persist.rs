//! The state file: the whole world as JSON, written atomically (temp + rename, mode
//! 0600), debounced after changes and on shutdown; a sidecar `<file>.lock` held with an
//! exclusive lock while the sim runs (a lock on the data file itself would not survive
//! the rename).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::world::World;
use crate::{Inner, SimError};

fn lock_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    path.with_file_name(name)
}

fn open_private(path: &Path) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.create(true).truncate(false).write(true).read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

/// Takes the exclusive lock, failing fast or waiting (`wait`).
pub async fn acquire_lock(path: &Path, wait: bool) -> Result<File, SimError> {
    let lock = lock_path(path);
    let err = |message: String| SimError::StateFile {
        path: path.to_path_buf(),
        message,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| err(format!("cannot create its folder: {e}")))?;
    }
    let file =
        open_private(&lock).map_err(|e| err(format!("cannot open {}: {e}", lock.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) if wait => {
            tokio::task::spawn_blocking(move || file.lock().map(|()| file))
                .await
                .map_err(|e| err(format!("lock wait failed: {e}")))?
                .map_err(|e| err(format!("lock wait failed: {e}")))
        }
        Err(std::fs::TryLockError::WouldBlock) => Err(SimError::Locked {
            path: path.to_path_buf(),
            lock,
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(err(format!("cannot lock: {e}"))),
    }
}

pub fn load(path: &Path) -> Result<Option<World>, SimError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(SimError::StateFile {
                path: path.to_path_buf(),
                message: format!("cannot read: {e}"),
            });
        }
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| SimError::StateFile {
            path: path.to_path_buf(),
            message: format!("not a fly-sim state file: {e}"),
        })
}

/// The latest model instant the world mentions, so a reload's clock starts after it.
pub fn latest_instant(w: &World) -> i64 {
    let mut latest = 0;
    for app in w.apps.values() {
        latest = latest.max(app.created_at);
        for m in app.machines.values() {
            latest = latest.max(m.updated_at);
            if let Some(e) = m.events.back() {
                latest = latest.max(e.timestamp);
            }
        }
        for v in app.volumes.values() {
            latest = latest.max(v.created_at);
        }
    }
    latest
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    {
        let mut f = open_private(&tmp)?;
        f.set_len(0)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Writes the world now if a state file is configured.
pub fn save_now(inner: &Inner) {
    let Some(path) = &inner.config.state_file else {
        return;
    };
    inner.dirty.store(false, Ordering::Release);
    let bytes = {
        let w = crate::lock(&inner.world);
        serde_json::to_vec(&*w)
    };
    match bytes {
        Ok(bytes) => {
            if let Err(e) = write_atomically(path, &bytes) {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the state file");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot serialise the world"),
    }
}

/// Saves at most every 250 ms while changes keep coming.
pub fn spawn_saver(inner: Arc<Inner>) -> Option<tokio::task::JoinHandle<()>> {
    inner.config.state_file.as_ref()?;
    Some(tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            if inner.dirty.load(Ordering::Acquire) {
                let inner = Arc::clone(&inner);
                let _ = tokio::task::spawn_blocking(move || save_now(&inner)).await;
            }
        }
    }))
}
