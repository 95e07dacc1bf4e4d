//! One writer per resumable state file: an exclusive `flock` on
//! `<state>.lock`, held for as long as the evaluation that owns the state
//! runs. The kernel releases it when the process ends in any way (kill -9
//! included), so a lock is never stale and needs no sweeping; the file holds
//! the owner's pid and host only to name it in the refusal.
//!
//! The lock file is removed on release. Removing a lock file races with a
//! process that opened it just before (it would lock the removed inode), so
//! after locking we check that the path still names the inode we locked and
//! start over when it does not.

use crate::error::{CoreError, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Held while alive; dropping it removes the lock file and releases it.
#[derive(Debug)]
pub struct StateLock {
    path: PathBuf,
    file: File,
}

/// `<state>.lock` beside the state file.
pub fn lock_path(state: &Path) -> PathBuf {
    let mut s = state.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

fn io_err(path: &Path, source: std::io::Error) -> CoreError {
    CoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn same_inode(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

impl StateLock {
    /// Takes the lock of `state` or refuses at once, naming the process that
    /// holds it (`what` says what the state is, for the message).
    pub fn acquire(state: &Path, what: &str) -> Result<StateLock> {
        let path = lock_path(state);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        }
        for _ in 0..16 {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(|e| io_err(&path, e))?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    let mut holder = String::new();
                    let _ = file.read_to_string(&mut holder);
                    let holder = holder.trim();
                    let who = if holder.is_empty() {
                        "another process".to_string()
                    } else {
                        format!("another process ({holder})")
                    };
                    return Err(CoreError::Locked {
                        path: state.display().to_string(),
                        message: format!(
                            "{who} is running {what} with this state file right now; wait for it to finish or stop it (its lock: {})",
                            path.display()
                        ),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(io_err(&path, e)),
            }
            if !same_inode(&file, &path) {
                // Its owner removed it between our open and our lock.
                continue;
            }
            let owner = format!("pid {} on {}", std::process::id(), host());
            file.set_len(0)
                .and_then(|_| file.rewind())
                .and_then(|_| file.write_all(owner.as_bytes()))
                .map_err(|e| io_err(&path, e))?;
            return Ok(StateLock { path, file });
        }
        Err(io_err(
            &path,
            std::io::Error::other("the lock file kept being replaced"),
        ))
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Remove while still holding it, so nobody locks the old inode after.
        let _ = std::fs::remove_file(&self.path);
        let _ = self.file.unlock();
    }
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_naming_the_holder_and_freed_on_drop() {
        let dir = std::env::temp_dir().join(format!("st-lock-{}", std::process::id()));
        let state = dir.join("eval.aa.autoattack-state.safetensors");
        let first = StateLock::acquire(&state, "aa").unwrap();
        assert!(lock_path(&state).exists());
        // flock is per open file description: a second open in this process
        // conflicts as a second process would.
        let e = StateLock::acquire(&state, "aa").unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("wait for it"), "{text}");
        assert_eq!(e.code(), "ERR_LOCKED");
        drop(first);
        assert!(!lock_path(&state).exists());
        let again = StateLock::acquire(&state, "aa").unwrap();
        drop(again);
        let _ = std::fs::remove_dir_all(dir);
    }
}
