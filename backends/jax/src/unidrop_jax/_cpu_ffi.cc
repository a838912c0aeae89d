// unidrop_jax._cpu_ffi: an XLA FFI handler, "unidrop_dropout_v1" on the CPU, that runs unidrop-numpy's
// compiled kernel on XLA's buffers.
//
// No dropout code lives here: the handler calls the kernel through the C entry point unidrop-numpy
// exports (the capsule of unidrop/cpu_kernel_api.h), so the Philox rounds, rounding rules and loops
// are the ones _kernel.c compiles from the core's mask_stream_v1.h. This file only decodes the call,
// splits large arrays over XLA's own intra-op thread pool (every element depends on its index alone,
// so results never depend on the split) and sets the floating-point environment of each slice:
//
// * exact (flush = 0, the forward): subnormals are computed, not flushed, as mask stream v1 says;
//   XLA:CPU runs its programs with flush-to-zero and denormals-are-zero set, so they are cleared;
// * flush = 1 (tangents and cotangents): both are set, as for XLA's own float multiply, so that the
//   result has the bits of the JAX backend's linear tangent map (unidrop_jax.scaling.linear_scaled).
//
// Operands: x (float16, bfloat16, float32 or float64, any shape), the uint32 scalars seed low and
// high, stream low and high, threshold, and the scale (float32, or float64 for float64 x). Result:
// an array like x. Attributes: broadcast (bit d: axis d of the mask is broadcast), flush (0 or 1).

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

#include "unidrop/cpu_kernel_api.h"
#include "xla/ffi/api/ffi.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#define UD_FP_CONTROL "x86-64 MXCSR"
#elif defined(__aarch64__) && (defined(__GNUC__) || defined(__clang__))
#define UD_FP_CONTROL "arm64 FPCR"
#else
#define UD_FP_CONTROL ""  // unknown: the module does not load (the Python side falls back to XLA)
#endif

namespace ffi = xla::ffi;

namespace {

const ud_cpu_kernel_api *kernel = nullptr;

// Elements per slice below which a call runs on the calling thread only; slices start at multiples
// of kAlign (whole tiles of the kernel).
constexpr uint64_t kMinPerThread = uint64_t{1} << 16;
constexpr uint64_t kAlign = uint64_t{1} << 12;

// The flush-to-zero and denormals-are-zero modes of this thread, set or cleared for a scope.
class FlushMode {
 public:
  explicit FlushMode(bool flush) {
#if defined(__x86_64__) || defined(_M_X64)
    constexpr unsigned kBits = 0x8040u;  // FTZ (bit 15), DAZ (bit 6)
    saved_ = _mm_getcsr();
    _mm_setcsr(flush ? (saved_ | kBits) : (saved_ & ~kBits));
#elif defined(__aarch64__)
    constexpr uint64_t kFz = uint64_t{1} << 24;  // FZ: flush inputs and results
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    saved_ = fpcr;
    fpcr = flush ? (fpcr | kFz) : (fpcr & ~kFz);
    __asm__ volatile("msr fpcr, %0" : : "r"(fpcr));
#else
    (void)flush;
#endif
  }
  ~FlushMode() {
#if defined(__x86_64__) || defined(_M_X64)
    _mm_setcsr(saved_);
#elif defined(__aarch64__)
    __asm__ volatile("msr fpcr, %0" : : "r"(saved_));
#endif
  }
  FlushMode(const FlushMode &) = delete;
  FlushMode &operator=(const FlushMode &) = delete;

 private:
#if defined(__aarch64__)
  uint64_t saved_;
#else
  unsigned saved_;
#endif
};

// One call's arguments, and the slices its threads take in turn.
struct Work {
  int kind;
  const void *x;
  void *y;
  int ndim;
  int64_t shape[64];
  uint64_t broadcast, seed, stream;
  uint32_t threshold;
  double scale;
  bool flush;
  uint64_t count, step, slices;
  std::atomic<uint64_t> next{0};
  std::atomic<int> failed{0};
  std::mutex lock;
  std::condition_variable finished;
  uint64_t done = 0;  // slices finished (under lock)

  int run(uint64_t start, uint64_t stop) const {
    FlushMode mode(flush);
    return kernel->dropout(kind, x, y, ndim, shape, broadcast, seed, stream, threshold, scale, start, stop);
  }

  // Take slices until none is left. A pool task that starts after the call returned finds none.
  void take() {
    for (uint64_t i; (i = next.fetch_add(1)) < slices;) {
      uint64_t stop = (i + 1) * step < count ? (i + 1) * step : count;
      if (run(i * step, stop) != 0) failed.store(1);
      std::lock_guard<std::mutex> hold(lock);
      if (++done == slices) finished.notify_all();
    }
  }
};

int KindOf(ffi::DataType type) {
  switch (type) {
    case ffi::DataType::F16:
      return UD_KIND_FLOAT16;
    case ffi::DataType::BF16:
      return UD_KIND_BFLOAT16;
    case ffi::DataType::F32:
      return UD_KIND_FLOAT32;
    case ffi::DataType::F64:
      return UD_KIND_FLOAT64;
    default:
      return -1;
  }
}

ffi::Error Dropout(ffi::ThreadPool pool, ffi::AnyBuffer x, ffi::BufferR0<ffi::U32> seed_lo,
                   ffi::BufferR0<ffi::U32> seed_hi, ffi::BufferR0<ffi::U32> stream_lo,
                   ffi::BufferR0<ffi::U32> stream_hi, ffi::BufferR0<ffi::U32> threshold,
                   ffi::AnyBuffer scale, ffi::Result<ffi::AnyBuffer> y, int64_t broadcast, int64_t flush) {
  const int kind = KindOf(x.element_type());
  auto dims = x.dimensions();
  if (kind < 0 || y->element_type() != x.element_type() || dims.size() > 64)
    return ffi::Error::InvalidArgument("unidrop_dropout_v1: x must be float16, bfloat16, float32 or float64, <= 64 axes");
  auto work = std::make_shared<Work>();
  work->kind = kind;
  work->x = x.untyped_data();
  work->y = y->untyped_data();
  work->ndim = static_cast<int>(dims.size());
  work->count = 1;
  for (int d = 0; d < work->ndim; ++d) {
    work->shape[d] = dims[d];
    work->count *= static_cast<uint64_t>(dims[d]);
  }
  work->broadcast = static_cast<uint64_t>(broadcast);
  work->seed = seed_lo.typed_data()[0] | (static_cast<uint64_t>(seed_hi.typed_data()[0]) << 32);
  work->stream = stream_lo.typed_data()[0] | (static_cast<uint64_t>(stream_hi.typed_data()[0]) << 32);
  work->threshold = threshold.typed_data()[0];
  if (scale.element_type() == ffi::DataType::F64)
    work->scale = *static_cast<const double *>(scale.untyped_data());
  else if (scale.element_type() == ffi::DataType::F32)
    work->scale = *static_cast<const float *>(scale.untyped_data());
  else
    return ffi::Error::InvalidArgument("unidrop_dropout_v1: scale must be a float32 or float64 scalar");
  work->flush = flush != 0;
  if (work->count == 0) return ffi::Error::Success();

  uint64_t threads = static_cast<uint64_t>(pool.num_threads());
  uint64_t parts = work->count / kMinPerThread;
  if (parts > threads) parts = threads;
  if (parts <= 1) {  // small: on this thread, no pool
    if (work->run(0, work->count) != 0) return ffi::Error::InvalidArgument("unidrop_dropout_v1: bad call");
    return ffi::Error::Success();
  }
  work->step = (work->count / parts + kAlign - 1) / kAlign * kAlign;
  work->slices = (work->count + work->step - 1) / work->step;
  for (uint64_t i = 1; i < work->slices; ++i) pool.Schedule([work] { work->take(); });
  work->take();  // this thread works too, so the call finishes even if no pool thread is free
  std::unique_lock<std::mutex> hold(work->lock);
  work->finished.wait(hold, [&] { return work->done == work->slices; });
  if (work->failed.load()) return ffi::Error::InvalidArgument("unidrop_dropout_v1: bad call");
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(UnidropDropoutV1, Dropout,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::BufferR0<ffi::U32>>()
                                  .Arg<ffi::BufferR0<ffi::U32>>()
                                  .Arg<ffi::BufferR0<ffi::U32>>()
                                  .Arg<ffi::BufferR0<ffi::U32>>()
                                  .Arg<ffi::BufferR0<ffi::U32>>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<int64_t>("broadcast")
                                  .Attr<int64_t>("flush"));

static PyObject *py_handler(PyObject *, PyObject *) {
  return PyCapsule_New(reinterpret_cast<void *>(UnidropDropoutV1), nullptr, nullptr);
}

static PyMethodDef methods[] = {
    {"handler", py_handler, METH_NOARGS,
     "handler()\n\nThe XLA FFI handler of unidrop_dropout_v1 (a PyCapsule for jax.ffi.register_ffi_target)."},
    {nullptr, nullptr, 0, nullptr},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_cpu_ffi",
    "XLA FFI handler for mask stream v1 dropout on the CPU, calling unidrop-numpy's compiled kernel.", -1, methods,
};

PyMODINIT_FUNC PyInit__cpu_ffi(void) {
  if (UD_FP_CONTROL[0] == '\0') {
    PyErr_SetString(PyExc_ImportError, "unidrop_jax._cpu_ffi: no known floating-point control on this CPU");
    return nullptr;
  }
  // PyCapsule_Import walks attributes from the package: import the kernel's module itself first
  PyObject *owner = PyImport_ImportModule("unidrop_numpy._kernel");
  Py_XDECREF(owner);
  void *api = owner == nullptr ? nullptr : PyCapsule_Import(UD_CPU_KERNEL_CAPSULE, 0);
  if (api == nullptr) {
    PyErr_Clear();
    PyErr_SetString(PyExc_ImportError,
                    "unidrop_jax._cpu_ffi needs unidrop-numpy's compiled kernel (" UD_CPU_KERNEL_CAPSULE ")");
    return nullptr;
  }
  kernel = static_cast<const ud_cpu_kernel_api *>(api);
  if (kernel->version != UD_CPU_KERNEL_API_VERSION) {
    PyErr_Format(PyExc_ImportError, "unidrop_jax._cpu_ffi: unidrop-numpy's kernel C API is version %d, not %d",
                 kernel->version, UD_CPU_KERNEL_API_VERSION);
    kernel = nullptr;
    return nullptr;
  }
  PyObject *m = PyModule_Create(&module);
  if (m == nullptr) return nullptr;
  if (PyModule_AddStringConstant(m, "FP_CONTROL", UD_FP_CONTROL) < 0) {
    Py_DECREF(m);
    return nullptr;
  }
  return m;
}
