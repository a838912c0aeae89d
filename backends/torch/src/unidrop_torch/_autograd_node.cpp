// unidrop_torch._autograd_node: eager dropout of a small CPU tensor that needs a gradient, recorded
// as one C++ autograd node, as torch's own dropout is.
//
// A Python autograd Function costs a few microseconds each way in torch's machinery alone (its
// context object, and the engine calling back into Python for the backward): at 2^10 elements that
// is more than torch's whole dropout backward. This node is the same computation without Python:
// the forward and the backward each run unidrop-numpy's compiled kernel once; the node keeps the
// seed, stream, threshold and scale (no tensor: the backward regenerates the mask); a backward
// recorded with create_graph=True is a new dropout call, by this node again where nothing is
// watching (double backward).
//
// No dropout code lives here: the kernel is reached through the C entry point unidrop-numpy exports
// (the capsule of unidrop/cpu_kernel_api.h), so the Philox rounds, rounding rules and loops are
// those _kernel.c compiles from the core's mask_stream_v1.h.
//
// A gradient the kernel cannot read as plain memory (a batched gradient of
// autograd.grad(is_grads_batched=True), a dual tensor of forward-over-reverse, a lazily negated
// view, a tensor of a transform), and every backward recorded with create_graph=True, go to the
// Python function given to set_fallback, which routes them as unidrop_torch.ops does.
//
// torch's compiled autograd cannot capture this node (it has no compiled_args): where
// torch._dynamo.config.compiled_autograd is set, the Python side does not record it.

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/util/SmallVector.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/csrc/autograd/python_cpp_function.h>
#include <torch/csrc/utils/pybind.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "unidrop/cpu_kernel_api.h"

#ifndef UNIDROP_TORCH_BUILT_FOR
#error "setup.py passes UNIDROP_TORCH_BUILT_FOR, the torch version this module is built against"
#endif
#ifndef UNIDROP_NODE_SOURCE_DIGEST
#error "setup.py passes UNIDROP_NODE_SOURCE_DIGEST, the digest of this file as it was built"
#endif

namespace py = pybind11;
using torch::autograd::variable_list;

namespace {

const ud_cpu_kernel_api *kernel = nullptr;
// The Python function for gradients the kernel cannot read (set once, never released).
PyObject *fallback = nullptr;
// The dispatch keys of a plain dense CPU tensor: anything else (a wrapper, a negated view) is not
// plain memory for the kernel.
c10::DispatchKeySet plain_keys;
// The Python type of the node's grad_fn objects (torch.autograd.graph.Node registers it).
PyTypeObject node_type;

// The keys of a new CPU tensor made on a new thread, whose thread-local state (inference mode,
// torch.func transforms, dispatch modes: whatever the importing thread has on) is the default.
c10::DispatchKeySet plain_cpu_keys() {
  c10::DispatchKeySet keys;
  std::thread([&keys] { keys = at::empty({0}).key_set(); }).join();
  return keys;
}

// One dropout call's randomness and form: what the backward needs to regenerate the mask.
struct Call {
  int kind;
  uint64_t broadcast;  // bit d: axis d of the mask is broadcast
  uint64_t seed;
  uint64_t stream;
  uint32_t threshold;  // floor(p * 2^32) < 2^32
  double scale;        // 1 / (1 - p)
  double p;            // for the fallback, which takes the operator's arguments
};

constexpr at::ScalarType kScalarTypes[] = {at::kHalf, at::kBFloat16, at::kFloat, at::kDouble};

at::Tensor dropout(const at::Tensor &x, const Call &call);
at::Tensor dropout_in_python(const at::Tensor &x, const Call &call);

// The backward of one dropout call: the same dropout of the incoming gradient.
class DropoutBackward final : public torch::autograd::Node {
 public:
  explicit DropoutBackward(const Call &call) : call_(call) {}

  variable_list apply(variable_list &&grads) override {
    if (!grads[0].defined() || !should_compute_output(0)) return {at::Tensor()};
    // A backward recorded for a higher derivative (create_graph=True) is a new dropout call: its
    // route (this node, the operator a dispatch mode or the profiler must see, the Function with a
    // jvp) is chosen in Python as for any call.
    if (torch::autograd::GradMode::is_enabled()) return {dropout_in_python(grads[0], call_)};
    return {dropout(grads[0], call_)};
  }

  std::string name() const override { return "UnidropDropoutBackward"; }

 private:
  Call call_;
};

// torch holds nodes by std::shared_ptr before 2.13's c10::intrusive_ptr: make one of the kind an
// Edge holds (the member template is instantiated only for the kind this torch has).
template <class Pointer>
struct NodeMaker;
template <class T>
struct NodeMaker<std::shared_ptr<T>> {
  template <class N = DropoutBackward>
  static std::shared_ptr<N> make(const Call &call) {
    return std::make_shared<N>(call);
  }
};
template <class T>
struct NodeMaker<c10::intrusive_ptr<T>> {
  template <class N = DropoutBackward>
  static c10::intrusive_ptr<N> make(const Call &call) {
    return c10::make_intrusive<N>(call);
  }
};
using NodePointer = std::decay_t<decltype(std::declval<torch::autograd::Edge>().function)>;

// True when the kernel can read x: a plain dense CPU tensor of the call's dtype, no tangent.
bool readable(const at::Tensor &x, const Call &call) {
  return x.key_set() == plain_keys && x.scalar_type() == kScalarTypes[call.kind] && x.dim() <= 64 &&
         !x._fw_grad(/*level=*/0).defined();
}

// The kernel's dropout of the plain tensor x into a new contiguous tensor (no autograd).
at::Tensor compute(const at::Tensor &x, const Call &call) {
  at::Tensor input = x.contiguous();
  at::Tensor y = at::empty_like(input, at::MemoryFormat::Contiguous);
  const int64_t count = input.numel();
  if (count == 0) return y;
  c10::SmallVector<int64_t, 8> shape(input.sizes().begin(), input.sizes().end());
  const int failed = kernel->dropout(call.kind, input.const_data_ptr(), y.mutable_data_ptr(),
                                     static_cast<int>(shape.size()), shape.data(), call.broadcast,
                                     call.seed, call.stream, call.threshold, call.scale, 0,
                                     static_cast<uint64_t>(count));
  TORCH_CHECK(!failed, "unidrop: the CPU kernel refused a tensor of shape ", input.sizes());
  return y;
}

// Dropout of x by the Python fallback (x is not plain memory).
at::Tensor dropout_in_python(const at::Tensor &x, const Call &call) {
  TORCH_CHECK(fallback != nullptr, "unidrop: no fallback was set for gradients that are not plain memory");
  py::gil_scoped_acquire gil;
  py::object result = py::reinterpret_borrow<py::function>(fallback)(
      x, call.p, call.seed, call.stream, call.broadcast);
  return result.cast<at::Tensor>();
}

// The kernel's dropout of x (readable), recorded for autograd when x needs a gradient and grad
// mode is on.
at::Tensor dropout_plain(const at::Tensor &x, const Call &call) {
  const bool record = torch::autograd::compute_requires_grad(x);
  at::Tensor y;
  {
    at::NoGradGuard no_grad;  // x.contiguous() is not part of the graph
    y = compute(x, call);
  }
  if (record) {
    auto node = NodeMaker<NodePointer>::make(call);
    node->set_next_edges(torch::autograd::collect_next_edges(x));
    torch::autograd::set_history(y, node);
  }
  return y;
}

// Dropout of x: by the kernel where it can read x, else by the Python fallback.
at::Tensor dropout(const at::Tensor &x, const Call &call) {
  return readable(x, call) ? dropout_plain(x, call) : dropout_in_python(x, call);
}

// The Python entry point: None (nothing done) where x is not plain C-contiguous memory for the
// kernel, so that the caller takes its own route (which gives the result x's layout, as
// torch.empty_like does: channels-last stays channels-last).
std::optional<at::Tensor> dropout_entry(const at::Tensor &x, int kind, uint64_t broadcast, uint64_t seed,
                                        uint64_t stream, uint32_t threshold, double scale, double p) {
  TORCH_CHECK(kind >= UD_KIND_FLOAT16 && kind <= UD_KIND_FLOAT64, "unidrop: kind must be 0..3, got ", kind);
  const Call call{kind, broadcast, seed, stream, threshold, scale, p};
  if (!readable(x, call) || !x.is_contiguous()) return std::nullopt;
  return dropout_plain(x, call);
}

void set_fallback(py::function function) {
  PyObject *previous = fallback;
  fallback = function.release().ptr();
  Py_XDECREF(previous);
}

}  // namespace

PYBIND11_MODULE(_autograd_node, m) {
  const std::string running = py::module_::import("torch").attr("__version__").cast<std::string>();
  if (running != UNIDROP_TORCH_BUILT_FOR) {
    throw py::import_error("built for torch " UNIDROP_TORCH_BUILT_FOR ", running torch " + running +
                           ": reinstall unidrop-torch to rebuild it");
  }
  kernel = static_cast<const ud_cpu_kernel_api *>(PyCapsule_Import(UD_CPU_KERNEL_CAPSULE, 0));
  if (kernel == nullptr) throw py::error_already_set();
  if (kernel->version != UD_CPU_KERNEL_API_VERSION) {
    throw py::import_error("unidrop-numpy's kernel API is version " + std::to_string(kernel->version) +
                           ", this module needs " + std::to_string(UD_CPU_KERNEL_API_VERSION));
  }
  plain_keys = plain_cpu_keys();
  torch::autograd::_initFunctionPyTypeObject(node_type, "UnidropDropoutBackward", nullptr, nullptr);
  Py_INCREF(&node_type);
  torch::autograd::registerCppFunction(typeid(DropoutBackward), &node_type);
  m.attr("UnidropDropoutBackward") = py::reinterpret_borrow<py::object>(reinterpret_cast<PyObject *>(&node_type));
  m.attr("BUILT_FOR") = UNIDROP_TORCH_BUILT_FOR;
  m.attr("SOURCE_DIGEST") = UNIDROP_NODE_SOURCE_DIGEST;
  m.def("dropout", &dropout_entry, py::arg("x"), py::arg("kind"), py::arg("broadcast"), py::arg("seed"),
        py::arg("stream"), py::arg("threshold"), py::arg("scale"), py::arg("p"),
        "Dropout of a plain CPU tensor, recorded as one C++ autograd node; None where x is not plain memory.");
  m.def("set_fallback", &set_fallback, py::arg("function"),
        "The function (grad, p, seed, stream, broadcast) the backward calls for a gradient that is not plain memory.");
}
