//! Accelerator memory statistics and cuDNN determinism (csrc/device_stats.cpp;
//! tch exposes neither). Used by the device check (examples/device_check)
//! to report memory peaks and to run its reproducibility check.
//!
//! On a host without an accelerator every query answers None and every
//! switch is a no-op that says so (false), so callers need no cfg.

use serde::Serialize;

mod ffi {
    use std::os::raw::{c_int, c_longlong};
    extern "C" {
        pub fn st_accel_memory_stats(index: c_int, out: *mut c_longlong) -> c_int;
        pub fn st_accel_reset_peak(index: c_int) -> c_int;
        pub fn st_accel_empty_cache() -> c_int;
        pub fn st_set_cudnn_deterministic(on: c_int) -> c_int;
        pub fn st_cudnn_deterministic() -> c_int;
        pub fn st_set_mkldnn_enabled(on: c_int) -> c_int;
    }
}

/// The caching allocator's counters for one device (bytes), as
/// `torch.cuda.memory_stats` names them, plus what the driver reports free.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MemoryStats {
    pub allocated: i64,
    pub peak_allocated: i64,
    pub reserved: i64,
    pub peak_reserved: i64,
    /// Allocation failures the allocator reported (after freeing its cache).
    pub ooms: i64,
    pub free: i64,
    pub total: i64,
}

/// The allocator's statistics for accelerator `index`, or None without one.
pub fn memory_stats(index: usize) -> Option<MemoryStats> {
    let mut out = [0i64; 7];
    // SAFETY: `out` has the 7 slots the shim writes; exceptions are caught there.
    let rc = unsafe { ffi::st_accel_memory_stats(index as i32, out.as_mut_ptr()) };
    (rc == 0).then_some(MemoryStats {
        allocated: out[0],
        peak_allocated: out[1],
        reserved: out[2],
        peak_reserved: out[3],
        ooms: out[4],
        free: out[5],
        total: out[6],
    })
}

/// Starts a new peak on accelerator `index`; false without one.
pub fn reset_peak(index: usize) -> bool {
    // SAFETY: no pointers; exceptions are caught in the shim.
    unsafe { ffi::st_accel_reset_peak(index as i32) == 0 }
}

/// Hands the allocator's cached, unused blocks back; false without an accelerator.
pub fn empty_cache() -> bool {
    // SAFETY: no pointers; exceptions are caught in the shim.
    unsafe { ffi::st_accel_empty_cache() == 0 }
}

/// `torch.backends.cudnn.deterministic = on` (turning it on also turns
/// cuDNN's benchmark off). Process-wide; no effect on CPU kernels.
pub fn set_cudnn_deterministic(on: bool) {
    // SAFETY: no pointers; exceptions are caught in the shim.
    unsafe { ffi::st_set_cudnn_deterministic(i32::from(on)) };
}

/// Whether cuDNN's deterministic mode is on.
pub fn cudnn_deterministic() -> bool {
    // SAFETY: no pointers; exceptions are caught in the shim.
    unsafe { ffi::st_cudnn_deterministic() != 0 }
}

/// `torch.backends.mkldnn.enabled = on`: oneDNN's CPU kernels (process-wide).
pub fn set_mkldnn_enabled(on: bool) {
    // SAFETY: no pointers; exceptions are caught in the shim.
    unsafe { ffi::st_set_mkldnn_enabled(i32::from(on)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_accelerator_there_are_no_statistics() {
        if tch::Cuda::is_available() {
            let s = memory_stats(0).expect("statistics on a CUDA host");
            assert!(s.peak_allocated >= s.allocated && s.total >= s.free);
        } else {
            assert_eq!(memory_stats(0), None);
            assert!(!reset_peak(0));
            assert!(!empty_cache());
        }
    }

    #[test]
    fn the_deterministic_switch_round_trips() {
        let before = cudnn_deterministic();
        set_cudnn_deterministic(true);
        assert!(cudnn_deterministic());
        set_cudnn_deterministic(false);
        assert!(!cudnn_deterministic());
        set_cudnn_deterministic(before);
    }
}
