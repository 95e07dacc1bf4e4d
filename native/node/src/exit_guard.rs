//! Process exit while native work runs.
//!
//! When Node exits (`process.exit()`, a second Ctrl-C, an uncaught error) it
//! calls libc `exit()`, which runs libtorch's static destructors. A training
//! thread still inside a convolution then crashes the process (segfault, or
//! a libtorch stack dump) and leaves nothing useful behind.
//!
//! The rule here: native threads never meet libtorch's teardown.
//! - Each native job registers itself (`JobGuard`) with its cancel flag.
//! - `note_exit(code)` is called by `ts/native.ts` from `process.on('exit')`,
//!   before Node or libc tear anything down. With no job running it only
//!   records the code. With jobs running it decides there and then: it
//!   raises every job's cancel flag, removes the temp files of checkpoint
//!   writes in flight (holding their lock, so no writer creates or renames a
//!   file after that) and ends the process with `_exit(code)`, skipping the
//!   static teardown those threads would crash in. Deciding in an `atexit`
//!   handler is too late: libtorch objects created lazily on the training
//!   thread (the autograd engine, at the first backward) registered their
//!   destructors after any hook of ours and would already be gone.
//! - An `atexit` handler does the same as a backstop, for an exit that Node
//!   did not announce (the addon used only from a worker thread).
//!   Files are never half-written: checkpoints are written to a temp file and
//!   renamed, so what exists is whole.

use std::os::raw::c_int;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};

extern "C" {
    fn atexit(callback: extern "C" fn()) -> c_int;
    fn _exit(status: c_int) -> !;
}

static ACTIVE_JOBS: AtomicUsize = AtomicUsize::new(0);
static EXITING: AtomicBool = AtomicBool::new(false);
/// The code Node exits with, as `process.on('exit')` reported it; 1 if the
/// process exits without saying (it was not a clean exit then).
static EXIT_CODE: AtomicI32 = AtomicI32::new(1);
static CANCEL_FLAGS: Mutex<Vec<Weak<AtomicBool>>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

/// Ends the process now, leaving no temp file behind.
fn end_now(code: i32) -> ! {
    let _no_more_writes = st_core::checkpoint::close_temp_files();
    // SAFETY: _exit ends the process at once; nothing after it runs.
    unsafe { _exit(code) }
}

extern "C" fn on_process_exit() {
    if ACTIVE_JOBS.load(Ordering::SeqCst) > 0 {
        end_now(EXIT_CODE.load(Ordering::SeqCst));
    }
}

/// Registers the exit hook once. Called when the addon is first used, after
/// libtorch (a load-time dependency of this library) registered its own
/// destructors, so ours runs first.
pub fn install() {
    INSTALL.call_once(|| {
        // SAFETY: registering a plain extern "C" fn with libc.
        unsafe {
            atexit(on_process_exit);
        }
    });
}

/// True once the process is exiting: jobs then neither emit events nor
/// settle promises (the JavaScript side is going away).
pub fn exiting() -> bool {
    EXITING.load(Ordering::SeqCst)
}

/// The process is about to exit with `code`: stop every job, and if any is
/// still running, end the process before teardown can meet it.
pub fn note_exit(code: i32) {
    EXIT_CODE.store(code, Ordering::SeqCst);
    EXITING.store(true, Ordering::SeqCst);
    {
        let flags = CANCEL_FLAGS.lock().unwrap_or_else(|p| p.into_inner());
        for flag in flags.iter().filter_map(Weak::upgrade) {
            flag.store(true, Ordering::SeqCst);
        }
    }
    if ACTIVE_JOBS.load(Ordering::SeqCst) > 0 {
        end_now(code);
    }
}

/// Counts a native job as running from creation until drop (the last thing
/// its thread does, after every libtorch object of the job is gone and its
/// promise is settled).
pub struct JobGuard(());

impl JobGuard {
    pub fn new(cancel: Option<&Arc<AtomicBool>>) -> Self {
        install();
        ACTIVE_JOBS.fetch_add(1, Ordering::SeqCst);
        if let Some(flag) = cancel {
            let mut flags = CANCEL_FLAGS.lock().unwrap_or_else(|p| p.into_inner());
            flags.retain(|w| w.strong_count() > 0);
            flags.push(Arc::downgrade(flag));
            if exiting() {
                flag.store(true, Ordering::SeqCst);
            }
        }
        JobGuard(())
    }
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        ACTIVE_JOBS.fetch_sub(1, Ordering::SeqCst);
    }
}
