//! st-native-preload: the one thing the main addon cannot do for itself.
//!
//! The st-native addon links libtorch (`NEEDED libtorch_cpu.so`, ...) but
//! carries no rpath: where libtorch lives is only known at run time (an
//! environment variable, a Python's torch, the cache `st-native setup`
//! fills), and the dynamic loader reads `LD_LIBRARY_PATH` only once, at
//! process start. So before the addon is loaded, `ts/native.ts` opens
//! libtorch's libraries by absolute path with `RTLD_NOW | RTLD_GLOBAL`
//! through this library; the addon's NEEDED entries then resolve to the
//! already loaded libraries by soname (what PyTorch itself does before it
//! imports its extension). Libraries opened here stay for the process's
//! lifetime (never `dlclose`d: libtorch cannot be unloaded safely).

use napi::{Error, Result, Status};
use napi_derive::napi;
use std::ffi::{CStr, CString};

/// Opens `path` with RTLD_NOW | RTLD_GLOBAL. Throws with dlerror's text.
#[napi]
pub fn dlopen_global(path: String) -> Result<()> {
    let c_path = CString::new(path.as_str()).map_err(|_| {
        Error::new(
            Status::InvalidArg,
            format!("{path}: path contains a NUL byte"),
        )
    })?;
    // SAFETY: a valid C string; dlerror is read right after on this thread.
    unsafe {
        let handle = libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL);
        if handle.is_null() {
            let err = libc::dlerror();
            let message = if err.is_null() {
                "unknown dlopen error".to_string()
            } else {
                CStr::from_ptr(err).to_string_lossy().into_owned()
            };
            return Err(Error::new(Status::GenericFailure, message));
        }
    }
    Ok(())
}
