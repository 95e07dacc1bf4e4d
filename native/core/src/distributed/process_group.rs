//! A c10d process group (csrc/c10d.cpp): the TCPStore rendezvous, then Gloo
//! for CPU tensors or NCCL for CUDA tensors, with in-place sum all-reduce,
//! broadcast and barrier. Every failure (a rank that died, a timeout, a
//! rendezvous that never completed) comes back as `CoreError::Distributed`
//! naming this rank and the operation; nothing unwinds across the FFI.

use super::launcher::Launch;
use crate::error::{CoreError, Result};
use std::ffi::{c_char, c_int, c_long, c_void, CStr, CString};
use std::ptr::NonNull;
use std::time::Duration;
use tch::Tensor;

mod ffi {
    use super::*;
    #[repr(C)]
    pub struct StPg {
        _private: [u8; 0],
    }
    extern "C" {
        pub fn st_dist_nccl_available() -> c_int;
        #[allow(clippy::too_many_arguments)]
        pub fn st_dist_init(
            host: *const c_char,
            port: c_int,
            is_server: c_int,
            rank: c_int,
            world: c_int,
            timeout_ms: c_long,
            nccl: c_int,
            prefix: *const c_char,
            err: *mut c_char,
            err_len: usize,
        ) -> *mut StPg;
        pub fn st_dist_allreduce_sum(
            pg: *mut StPg,
            tensors: *mut *mut c_void,
            n: usize,
            err: *mut c_char,
            err_len: usize,
        ) -> c_int;
        pub fn st_dist_broadcast(
            pg: *mut StPg,
            tensors: *mut *mut c_void,
            n: usize,
            root: c_int,
            err: *mut c_char,
            err_len: usize,
        ) -> c_int;
        pub fn st_dist_barrier(pg: *mut StPg, err: *mut c_char, err_len: usize) -> c_int;
        pub fn st_dist_destroy(pg: *mut StPg);
    }
}

/// The collective engine of a process group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// CPU tensors.
    Gloo,
    /// CUDA tensors (the CUDA build of libtorch only).
    Nccl,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Gloo => "gloo",
            Backend::Nccl => "nccl",
        }
    }
}

/// Whether this libtorch has ProcessGroupNCCL (its CUDA build).
pub fn nccl_available() -> bool {
    // SAFETY: no arguments; exceptions are caught in the shim.
    unsafe { ffi::st_dist_nccl_available() != 0 }
}

const ERR_LEN: usize = 1024;

fn message(buf: &[u8]) -> String {
    CStr::from_bytes_until_nul(buf)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "unknown c10d error".into())
}

pub struct ProcessGroup {
    raw: NonNull<ffi::StPg>,
    rank: usize,
    world_size: usize,
    backend: Backend,
}

// SAFETY: c10d process groups and their store are used from any thread in
// libtorch (PyTorch hands them between threads); the handle is only freed
// by Drop.
unsafe impl Send for ProcessGroup {}

impl ProcessGroup {
    /// Joins the job `launch` describes: rendezvous through the TCPStore at
    /// MASTER_ADDR:MASTER_PORT (hosted by rank 0 unless torchrun's agent
    /// hosts it), then the process group. `timeout` bounds the rendezvous
    /// and every collective after it: a rank that dies or hangs makes the
    /// others fail within it instead of waiting for ever.
    pub fn connect(launch: &Launch, backend: Backend, timeout: Duration) -> Result<Self> {
        let fail = |m: &str| {
            CoreError::Distributed(format!(
                "rank {} of {}: could not join the job at {}:{} ({}): {m}",
                launch.rank,
                launch.world_size,
                launch.master_addr,
                launch.master_port,
                backend.name()
            ))
        };
        let host = CString::new(launch.master_addr.as_str())
            .map_err(|_| fail("MASTER_ADDR holds a NUL byte"))?;
        let prefix = CString::new(format!("st-native/attempt_{}", launch.attempt))
            .expect("no NUL in the prefix");
        let mut err = vec![0u8; ERR_LEN];
        // SAFETY: valid C strings and an error buffer of ERR_LEN bytes that
        // outlive the call; the shim catches every C++ exception.
        let raw = unsafe {
            ffi::st_dist_init(
                host.as_ptr(),
                c_int::from(launch.master_port),
                c_int::from(launch.hosts_store()),
                launch.rank as c_int,
                launch.world_size as c_int,
                timeout.as_millis().min(c_long::MAX as u128) as c_long,
                c_int::from(backend == Backend::Nccl),
                prefix.as_ptr(),
                err.as_mut_ptr().cast(),
                ERR_LEN,
            )
        };
        match NonNull::new(raw) {
            Some(raw) => Ok(ProcessGroup {
                raw,
                rank: launch.rank,
                world_size: launch.world_size,
                backend,
            }),
            None => Err(fail(&message(&err))),
        }
    }

    pub fn rank(&self) -> usize {
        self.rank
    }

    pub fn world_size(&self) -> usize {
        self.world_size
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    fn check(&self, what: &str, rc: c_int, err: &[u8]) -> Result<()> {
        if rc == 0 {
            return Ok(());
        }
        Err(CoreError::Distributed(format!(
            "rank {} of {}: {what} failed: {} (another rank failed, was killed or stopped answering within the timeout; see its output)",
            self.rank,
            self.world_size,
            message(err)
        )))
    }

    fn handles(tensors: &[Tensor]) -> Vec<*mut c_void> {
        // A tch Tensor's handle is libtorch's `at::Tensor*` (torch-sys's
        // `tensor` type); c10d writes through it into the shared storage.
        tensors.iter().map(|t| t.as_ptr() as *mut c_void).collect()
    }

    /// Sums each tensor over all ranks, in place (one collective per tensor,
    /// all launched before any is awaited). Tensors must be dense and
    /// contiguous, on the group's device kind, with equal shapes across ranks.
    pub fn all_reduce_sum(&self, tensors: &[Tensor]) -> Result<()> {
        let mut ptrs = Self::handles(tensors);
        let mut err = vec![0u8; ERR_LEN];
        // SAFETY: the pointers are live `at::Tensor*` borrowed for the call;
        // the error buffer holds ERR_LEN bytes.
        let rc = unsafe {
            ffi::st_dist_allreduce_sum(
                self.raw.as_ptr(),
                ptrs.as_mut_ptr(),
                ptrs.len(),
                err.as_mut_ptr().cast(),
                ERR_LEN,
            )
        };
        self.check("all-reduce", rc, &err)
    }

    /// Overwrites each tensor with rank `root`'s, in place.
    pub fn broadcast(&self, tensors: &[Tensor], root: usize) -> Result<()> {
        let mut ptrs = Self::handles(tensors);
        let mut err = vec![0u8; ERR_LEN];
        // SAFETY: as in `all_reduce_sum`.
        let rc = unsafe {
            ffi::st_dist_broadcast(
                self.raw.as_ptr(),
                ptrs.as_mut_ptr(),
                ptrs.len(),
                root as c_int,
                err.as_mut_ptr().cast(),
                ERR_LEN,
            )
        };
        self.check("broadcast", rc, &err)
    }

    /// Returns once every rank has called it.
    pub fn barrier(&self) -> Result<()> {
        let mut err = vec![0u8; ERR_LEN];
        // SAFETY: the error buffer holds ERR_LEN bytes.
        let rc =
            unsafe { ffi::st_dist_barrier(self.raw.as_ptr(), err.as_mut_ptr().cast(), ERR_LEN) };
        self.check("barrier", rc, &err)
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: the handle came from st_dist_init and is freed once.
        unsafe { ffi::st_dist_destroy(self.raw.as_ptr()) };
    }
}
