// libtorch's own distributed engine (c10d) for data-parallel training:
// TCPStore rendezvous, ProcessGroupGloo (CPU tensors) or ProcessGroupNCCL
// (CUDA tensors), and the three collectives the trainer needs (sum
// all-reduce, broadcast, barrier). tch does not expose c10d; this is the
// thin C ABI over it. Every function catches C++ exceptions and returns the
// message: none may unwind into Rust.
//
// Why the two process groups are built through dlsym: the wheel ships
// ProcessGroupGloo.hpp but not the gloo headers it includes (gloo/*.h), and
// ProcessGroupNCCL.hpp needs the CUDA and NCCL headers and libtorch_cuda
// (absent from the CPU wheel). Both constructors are exported, though
// (`nm -D libtorch_cpu.so | grep ProcessGroupGlooC1`, likewise
// ProcessGroupNCCLC1 in libtorch_cuda.so), so the shim resolves them at run
// time from the libtorch that is loaded, constructs the object in place in
// a zeroed block larger than the class (488 and 1112 bytes in 2.11.0: the
// size its deleting destructor passes to operator delete), and from then on
// uses it only through c10d::Backend's virtual interface, whose header is
// complete. The same compiled shim thus works against the CPU and the CUDA
// wheel; NCCL reports "not available" where libtorch_cuda is absent.
#include <dlfcn.h>

#include <chrono>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

namespace {

using BackendPtr = c10::intrusive_ptr<c10d::Backend>;
using OptionsPtr = c10::intrusive_ptr<c10d::Backend::Options>;
using StorePtr = c10::intrusive_ptr<c10d::Store>;

// Upper bounds on the objects built in place (see the top comment); four
// times the 2.11.0 sizes, so a later libtorch with a few more members fits.
constexpr size_t kGlooBytes = 4 * 488;
constexpr size_t kNcclBytes = 4 * 1112;
constexpr size_t kNcclOptionsBytes = 4096;

// The exported symbols (Itanium mangling; by-value intrusive_ptr arguments
// and results are passed by hidden reference whatever the pointee, so
// intrusive_ptr<Backend::Options> stands for the derived Options types).
constexpr const char* kGlooOptionsCreate =
    "_ZN4c10d16ProcessGroupGloo7Options14create_defaultENSt6chrono8durationIlSt5ratioILl1ELl1000EEEE";
constexpr const char* kGlooCtor =
    "_ZN4c10d16ProcessGroupGlooC1ERKN3c1013intrusive_ptrINS_5StoreENS1_6detail34intrusive_target_"
    "default_null_typeIS3_EEEEiiNS2_INS0_7OptionsENS5_ISA_EEEE";
constexpr const char* kNcclOptionsCtor = "_ZN4c10d16ProcessGroupNCCL7OptionsC1Eb";
constexpr const char* kNcclCtor =
    "_ZN4c10d16ProcessGroupNCCLC1EN3c1013intrusive_ptrINS_5StoreENS1_6detail34intrusive_target_"
    "default_null_typeIS3_EEEEiiNS2_INS0_7OptionsENS5_IS8_EEEE";

using GlooOptionsCreate = OptionsPtr (*)(std::chrono::milliseconds);
using GlooCtor = void (*)(void*, const StorePtr&, int, int, OptionsPtr);
using NcclOptionsCtor = void (*)(void*, bool);
using NcclCtor = void (*)(void*, StorePtr, int, int, OptionsPtr);

// A symbol of an already loaded libtorch library (the addon loads libtorch
// in its own local scope, so RTLD_DEFAULT would not see it).
void* find_symbol(const char* lib, const char* name) {
  void* handle = dlopen(lib, RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) return nullptr;
  void* sym = dlsym(handle, name);
  dlclose(handle);  // drops the reference NOLOAD took; the library stays loaded
  return sym;
}

// A zeroed block for an object constructed in place; freed by the object's
// own deleting destructor (plain operator delete) once constructed.
void* zeroed_block(size_t bytes) {
  void* mem = ::operator new(bytes);
  std::memset(mem, 0, bytes);
  return mem;
}

BackendPtr make_gloo(const StorePtr& store, int rank, int size, std::chrono::milliseconds timeout) {
  auto create = reinterpret_cast<GlooOptionsCreate>(find_symbol("libtorch_cpu.so", kGlooOptionsCreate));
  auto ctor = reinterpret_cast<GlooCtor>(find_symbol("libtorch_cpu.so", kGlooCtor));
  if (create == nullptr || ctor == nullptr) {
    throw std::runtime_error("ProcessGroupGloo is not exported by this libtorch_cpu.so");
  }
  OptionsPtr options = create(timeout);
  void* mem = zeroed_block(kGlooBytes);
  try {
    ctor(mem, store, rank, size, options);
  } catch (...) {
    ::operator delete(mem);
    throw;
  }
  return BackendPtr::unsafe_steal_from_new(static_cast<c10d::Backend*>(mem));
}

bool nccl_symbols(NcclOptionsCtor* options_ctor, NcclCtor* ctor) {
  *options_ctor = reinterpret_cast<NcclOptionsCtor>(find_symbol("libtorch_cuda.so", kNcclOptionsCtor));
  *ctor = reinterpret_cast<NcclCtor>(find_symbol("libtorch_cuda.so", kNcclCtor));
  return *options_ctor != nullptr && *ctor != nullptr;
}

BackendPtr make_nccl(const StorePtr& store, int rank, int size, std::chrono::milliseconds timeout) {
  NcclOptionsCtor options_ctor;
  NcclCtor ctor;
  if (!nccl_symbols(&options_ctor, &ctor)) {
    throw std::runtime_error(
        "ProcessGroupNCCL is not available: this libtorch has no libtorch_cuda.so with NCCL (a CPU build?)");
  }
  void* omem = zeroed_block(kNcclOptionsBytes);
  try {
    options_ctor(omem, /*is_high_priority_stream=*/false);
  } catch (...) {
    ::operator delete(omem);
    throw;
  }
  auto options = OptionsPtr::unsafe_steal_from_new(static_cast<c10d::Backend::Options*>(omem));
  options->timeout = timeout;
  void* mem = zeroed_block(kNcclBytes);
  try {
    ctor(mem, store, rank, size, options);
  } catch (...) {
    ::operator delete(mem);
    throw;
  }
  return BackendPtr::unsafe_steal_from_new(static_cast<c10d::Backend*>(mem));
}

void set_error(char* err, size_t len, const std::string& msg) {
  if (err == nullptr || len == 0) return;
  size_t n = std::min(len - 1, msg.size());
  std::memcpy(err, msg.data(), n);
  err[n] = '\0';
}

// The first line of a c10 error (the rest is a C++ backtrace).
std::string first_line(const char* what) {
  std::string s(what);
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

template <typename F>
int guarded(char* err, size_t len, F&& f) {
  try {
    f();
    return 0;
  } catch (const c10::Error& e) {
    set_error(err, len, first_line(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    set_error(err, len, first_line(e.what()));
  } catch (...) {
    set_error(err, len, "unknown C++ exception in c10d");
  }
  return 1;
}

std::vector<at::Tensor> tensors_of(void** ptrs, size_t n) {
  std::vector<at::Tensor> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(*static_cast<at::Tensor*>(ptrs[i]));
  return out;
}

}  // namespace

struct st_pg {
  StorePtr store;
  BackendPtr backend;
};

extern "C" {

// 1 when this libtorch exports ProcessGroupNCCL (the CUDA build), else 0.
int st_dist_nccl_available() {
  NcclOptionsCtor a;
  NcclCtor b;
  return nccl_symbols(&a, &b) ? 1 : 0;
}

// Connects to (or, with is_server, hosts) the TCPStore at host:port, under
// the key prefix `prefix`, and builds the process group of `world` ranks:
// NCCL with nccl != 0, else Gloo. `timeout_ms` bounds the rendezvous and
// every later collective. NULL on failure, with the message in err.
st_pg* st_dist_init(const char* host, int port, int is_server, int rank, int world, long timeout_ms,
                    int nccl, const char* prefix, char* err, size_t err_len) {
  st_pg* out = nullptr;
  guarded(err, err_len, [&] {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions opts;
    opts.port = static_cast<std::uint16_t>(port);
    opts.isServer = is_server != 0;
    opts.numWorkers = static_cast<std::size_t>(world);
    opts.waitWorkers = false;
    opts.timeout = timeout;
    StorePtr tcp = c10::make_intrusive<c10d::TCPStore>(std::string(host), opts);
    StorePtr store = c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), tcp);
    BackendPtr backend = nccl ? make_nccl(store, rank, world, timeout) : make_gloo(store, rank, world, timeout);
    out = new st_pg{tcp, backend};
  });
  return out;
}

// In-place sum all-reduce of n tensors (at::Tensor*), launched together and
// then awaited (one collective per tensor).
int st_dist_allreduce_sum(st_pg* pg, void** tensors, size_t n, char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    auto all = tensors_of(tensors, n);
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& t : all) {
      std::vector<at::Tensor> one{t};
      c10d::AllreduceOptions o;
      o.reduceOp = c10d::ReduceOp::SUM;
      works.push_back(pg->backend->allreduce(one, o));
    }
    for (auto& w : works) w->wait();
  });
}

// In-place broadcast of n tensors from rank `root`.
int st_dist_broadcast(st_pg* pg, void** tensors, size_t n, int root, char* err, size_t err_len) {
  return guarded(err, err_len, [&] {
    auto all = tensors_of(tensors, n);
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& t : all) {
      std::vector<at::Tensor> one{t};
      c10d::BroadcastOptions o;
      o.rootRank = root;
      works.push_back(pg->backend->broadcast(one, o));
    }
    for (auto& w : works) w->wait();
  });
}

int st_dist_barrier(st_pg* pg, char* err, size_t err_len) {
  return guarded(err, err_len, [&] { pg->backend->barrier()->wait(); });
}

// Shuts the group down (NCCL frees its communicators) and frees it.
void st_dist_destroy(st_pg* pg) {
  if (pg == nullptr) return;
  try {
    pg->backend->shutdown();
  } catch (...) {
  }
  try {
    delete pg;
  } catch (...) {
  }
}
}
