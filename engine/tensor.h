// Tensor: a strided view (shape, strides, offset) of a reference-counted Storage, plus the autograd
// fields (requires_grad, grad, grad_fn). Copying a Tensor copies a handle, not data.
#pragma once
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/dtype.h"
#include "engine/error.h"
#include "engine/shape.h"
#include "engine/storage.h"

namespace ember {

struct Node;
class Generator;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape, strides;
  DType dtype = DType::Float32;
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient of a leaf
  std::shared_ptr<Node> grad_fn;     // the op that produced this tensor (nullptr for leaves)
  std::string name;                  // optional, used in error messages ("features.0.weight")
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories --------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = Device::CPU);
  static Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = Device::CPU);
  static Tensor ones(const Shape& shape, DType dtype = DType::Float32, Device device = Device::CPU);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::Float32, Device device = Device::CPU);
  static Tensor scalar(double value, DType dtype = DType::Float32);
  static Tensor arange(int64_t n, DType dtype = DType::Float32);
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape);
  static Tensor from_vector(std::initializer_list<float> values, const Shape& shape) {
    return from_vector(std::vector<float>(values), shape);
  }
  // Seeded random tensors (Philox: identical for any thread count).
  static Tensor uniform(const Shape& shape, double lo, double hi, Generator& gen, DType dtype = DType::Float32);
  static Tensor normal(const Shape& shape, double mean, double std, Generator& gen, DType dtype = DType::Float32);

  // ---- metadata ---------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t dim() const { return int64_t(impl().shape.size()); }
  int64_t size(int64_t d) const;
  int64_t numel() const { return shape_numel(impl().shape); }
  int64_t offset() const { return impl().offset; }
  DType dtype() const { return impl().dtype; }
  Device device() const;
  bool is_contiguous() const;
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype()); }
  std::string str() const;  // "float32[2, 3] cpu"
  const std::string& name() const { return impl().name; }
  Tensor& set_name(std::string n) {
    impl().name = std::move(n);
    return *this;
  }

  // ---- data access (CPU) ------------------------------------------------------------------
  // Pointer to the first element of this view; checks dtype. Strided: use strides() to walk it.
  template <class T>
  T* data() const;
  void* raw_data() const;
  double item() const;  // value of a one-element tensor, as double
  template <class T>
  std::vector<T> to_vector() const;  // contiguous copy of the values (converts dtype)
  double at(std::initializer_list<int64_t> index) const;  // element by index (tests, debugging)

  // ---- views (no copy; differentiable) ----------------------------------------------------
  Tensor view(const Shape& shape) const;     // needs compatible strides (contiguous)
  Tensor reshape(const Shape& shape) const;  // view when possible, else a copy; -1 infers one dim
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const { return transpose(0, 1); }
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;  // removes dim
  Tensor expand(const Shape& shape) const;          // broadcast with stride 0
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 1, int64_t end_dim = -1) const;
  Tensor contiguous() const;  // self if already contiguous
  Tensor clone() const;       // always a fresh contiguous copy (differentiable)
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;

  // ---- in-place, not recorded by autograd (init, optimizers, running stats) ----------------
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }
  Tensor& copy_(const Tensor& src);                    // same shape; converts dtype; any strides
  Tensor& add_(const Tensor& other, double alpha = 1);  // this += alpha * other (same shape)
  Tensor& mul_(double factor);

  // ---- autograd ---------------------------------------------------------------------------
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& requires_grad_(bool on = true);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  Tensor grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }
  void set_grad(const Tensor& g) { impl().grad = g.impl_; }
  void zero_grad() { impl().grad.reset(); }
  const std::shared_ptr<Node>& grad_fn() const { return impl().grad_fn; }
  // Reverse-mode pass from this tensor. Without `grad` the tensor must hold one element.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;
  Tensor detach() const;  // shares storage, no history

  TensorImpl& impl() const {
    EMBER_CHECK(impl_ != nullptr, "ember: use of an undefined (default-constructed) Tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Arithmetic operators (differentiable; defined in engine/ops).
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
inline Tensor operator*(double a, const Tensor& b) { return b * a; }
inline Tensor operator+(double a, const Tensor& b) { return b + a; }

// Checks used by ops: throw naming the op and the tensors' descriptions.
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b);
void check_same_device(const char* op, const Tensor& a, const Tensor& b);
void check_defined(const char* op, const Tensor& t, const char* arg);
void check_cpu(const char* op, const Tensor& t);
void check_floating(const char* op, const Tensor& t);

}  // namespace ember
