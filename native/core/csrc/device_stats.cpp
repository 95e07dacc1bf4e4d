// Accelerator memory statistics and cuDNN determinism, which tch 0.24 does
// not expose. Device-generic (ATen's accelerator API), so this compiles
// against a CPU-only libtorch too; on a host without an accelerator each
// call reports failure instead of throwing. No C++ exception may unwind
// into Rust: every function catches them.
#include <ATen/Context.h>
#include <ATen/DeviceAccelerator.h>

using c10::CachingAllocator::StatType;

namespace {
// An accelerator with at least one device (a CUDA build on a host without a
// GPU has the accelerator type but no device).
bool has_device() {
  return at::accelerator::getAccelerator(false).has_value() && at::accelerator::deviceCount() > 0;
}
}  // namespace

extern "C" {

// out[0] bytes allocated now, out[1] peak allocated, out[2] reserved now,
// out[3] peak reserved, out[4] OOMs the allocator reported, out[5] free
// device memory, out[6] total device memory. Returns 0 on success, 1 when
// there is no accelerator (or on any exception).
int st_accel_memory_stats(int index, long long* out) {
  try {
    if (!has_device()) return 1;
    auto idx = static_cast<c10::DeviceIndex>(index);
    auto s = at::accelerator::getDeviceStats(idx);
    auto agg = static_cast<size_t>(StatType::AGGREGATE);
    out[0] = s.allocated_bytes[agg].current;
    out[1] = s.allocated_bytes[agg].peak;
    out[2] = s.reserved_bytes[agg].current;
    out[3] = s.reserved_bytes[agg].peak;
    out[4] = s.num_ooms;
    auto info = at::accelerator::getMemoryInfo(idx);
    out[5] = static_cast<long long>(info.first);
    out[6] = static_cast<long long>(info.second);
    return 0;
  } catch (...) {
    return 1;
  }
}

// Starts a new peak (torch.cuda.reset_peak_memory_stats).
int st_accel_reset_peak(int index) {
  try {
    if (!has_device()) return 1;
    at::accelerator::resetPeakStats(static_cast<c10::DeviceIndex>(index));
    return 0;
  } catch (...) {
    return 1;
  }
}

// Returns cached, unused blocks to the device (torch.cuda.empty_cache).
int st_accel_empty_cache() {
  try {
    if (!has_device()) return 1;
    at::accelerator::emptyCache();
    return 0;
  } catch (...) {
    return 1;
  }
}

// torch.backends.cudnn.deterministic (and benchmark off when on, as PyTorch
// documents for reproducible runs).
int st_set_cudnn_deterministic(int on) {
  try {
    at::globalContext().setDeterministicCuDNN(on != 0);
    if (on) at::globalContext().setBenchmarkCuDNN(false);
    return 0;
  } catch (...) {
    return 1;
  }
}

int st_cudnn_deterministic() {
  try {
    return at::globalContext().deterministicCuDNN() ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

// oneDNN (mkldnn) CPU kernels on or off (torch.backends.mkldnn.enabled). The
// device check turns them off for its CPU allocation-failure probe: under an
// address-space limit oneDNN reports a failed allocation as "could not create
// a primitive", the plain kernels as the allocator's "can't allocate memory".
int st_set_mkldnn_enabled(int on) {
  try {
    at::globalContext().setUserEnabledMkldnn(on != 0);
    return 0;
  } catch (...) {
    return 1;
  }
}
}
