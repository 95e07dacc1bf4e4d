// CPU/CUDA autocast and TF32 switches that tch 0.24 does not expose (its
// `tch::autocast` is CUDA-only and fixed to f16). Every function catches C++
// exceptions: none may unwind into Rust.
#include <ATen/Context.h>
#include <ATen/autocast_mode.h>

namespace {
c10::DeviceType device_of(int cuda) { return cuda ? at::kCUDA : at::kCPU; }
}  // namespace

extern "C" {

// Enables (or disables) autocast on CPU (cuda = 0) or CUDA (cuda = 1) with
// dtype bf16 (half = 0) or f16 (half = 1); writes the previous state so the
// caller can restore it. Returns 0 on success, 1 on an exception.
int st_autocast_enter(int cuda, int enabled, int half, int* prev_enabled, int* prev_half) {
  try {
    auto d = device_of(cuda);
    *prev_enabled = at::autocast::is_autocast_enabled(d) ? 1 : 0;
    *prev_half = at::autocast::get_autocast_dtype(d) == at::kHalf ? 1 : 0;
    at::autocast::set_autocast_enabled(d, enabled != 0);
    at::autocast::set_autocast_dtype(d, half ? at::kHalf : at::kBFloat16);
    at::autocast::increment_nesting();
    return 0;
  } catch (...) {
    return 1;
  }
}

// Restores the state st_autocast_enter saved; clears the cast-weight cache
// when the outermost scope closes (as torch.autocast's __exit__ does).
int st_autocast_exit(int cuda, int prev_enabled, int prev_half) {
  try {
    auto d = device_of(cuda);
    if (at::autocast::decrement_nesting() == 0) {
      at::autocast::clear_cache();
    }
    at::autocast::set_autocast_enabled(d, prev_enabled != 0);
    at::autocast::set_autocast_dtype(d, prev_half ? at::kHalf : at::kBFloat16);
    return 0;
  } catch (...) {
    return 1;
  }
}

// Whether autocast is on for the device (for tests).
int st_autocast_is_enabled(int cuda) {
  try {
    return at::autocast::is_autocast_enabled(device_of(cuda)) ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

// torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32.
// They only change CUDA kernels; on CPU they have no effect.
int st_set_allow_tf32(int allow) {
  try {
    at::globalContext().setAllowTF32CuBLAS(allow != 0);
    at::globalContext().setAllowTF32CuDNN(allow != 0);
    return 0;
  } catch (...) {
    return 1;
  }
}

int st_allow_tf32_cublas() {
  try {
    return at::globalContext().allowTF32CuBLAS() ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

int st_allow_tf32_cudnn() {
  try {
    return at::globalContext().allowTF32CuDNN() ? 1 : 0;
  } catch (...) {
    return 0;
  }
}
}
