// Tensor storage, factories, element access and dtype/device conversion.
// Views (engine/views.cpp) and math ops (engine/ops/) live elsewhere.
#include "engine/tensor.h"

#include <cmath>
#include <cstring>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "engine/ops/cuda_ops.h"
#include "engine/rng.h"
#include "engine/strided.h"

namespace ember {
namespace {

std::shared_ptr<TensorImpl> new_impl(const Shape& shape, DType dtype, Device device) {
  for (auto d : shape) EMBER_CHECK(d >= 0, "Tensor: negative dimension in shape ", shape_str(shape));
  // Name the tensor being created: Storage alone can only say that CUDA is missing.
  if (device == Device::CUDA)
    require_cuda(detail::cat("Tensor ", dtype_name(dtype), shape_str(shape), " on cuda").c_str());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(size_t(shape_numel(shape)) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return impl;
}

// Reads/writes one element of any dtype as double: the slow, general path of copy_ and item().
double load_as_double(const void* base, DType t, int64_t i) {
  switch (t) {
    case DType::Float32: return static_cast<const float*>(base)[i];
    case DType::Float64: return static_cast<const double*>(base)[i];
    case DType::Int64: return double(static_cast<const int64_t*>(base)[i]);
    case DType::BFloat16: return static_cast<const bf16*>(base)[i].to_float();
  }
  return 0;
}
void store_from_double(void* base, DType t, int64_t i, double v) {
  switch (t) {
    case DType::Float32: static_cast<float*>(base)[i] = float(v); break;
    case DType::Float64: static_cast<double*>(base)[i] = v; break;
    case DType::Int64: static_cast<int64_t*>(base)[i] = int64_t(v); break;
    case DType::BFloat16: static_cast<bf16*>(base)[i] = bf16::from_float(float(v)); break;
  }
}

}  // namespace

// ---- factories ----------------------------------------------------------------------------
Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) { return Tensor(new_impl(shape, dtype, device)); }

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  if (device == Device::CUDA) {
    require_cuda("zeros").memset_zero(t.raw_data(), t.nbytes());
  } else {
    std::memset(t.raw_data(), 0, t.nbytes());  // all-zero bits are 0 for every dtype
  }
  return t;
}
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, Device::CPU);
  t.fill_(value);
  return device == Device::CPU ? t : t.to(device);
}
Tensor Tensor::scalar(double value, DType dtype) { return full({}, value, dtype); }
Tensor Tensor::arange(int64_t n, DType dtype) {
  Tensor t = empty({n}, dtype);
  for (int64_t i = 0; i < n; ++i) store_from_double(t.raw_data(), dtype, i, double(i));
  return t;
}

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape) {
  EMBER_CHECK(int64_t(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
              " values do not fill shape ", shape_str(shape));
  Tensor t = empty(shape, dtype_of<T>());
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  return t;
}
template Tensor Tensor::from_vector<float>(const std::vector<float>&, const Shape&);
template Tensor Tensor::from_vector<double>(const std::vector<double>&, const Shape&);
template Tensor Tensor::from_vector<int64_t>(const std::vector<int64_t>&, const Shape&);

Tensor Tensor::uniform(const Shape& shape, double lo, double hi, Generator& gen, DType dtype) {
  Tensor t = empty(shape, dtype);
  gen.fill_uniform(t, lo, hi);
  return t;
}
Tensor Tensor::normal(const Shape& shape, double mean, double std, Generator& gen, DType dtype) {
  Tensor t = empty(shape, dtype);
  gen.fill_normal(t, mean, std);
  return t;
}

// ---- metadata -----------------------------------------------------------------------------
int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "size")]; }
Device Tensor::device() const { return impl().storage->device(); }
bool Tensor::is_contiguous() const {
  int64_t expect = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (shape()[i] != 1 && strides()[i] != expect) return false;
    expect *= shape()[i];
  }
  return true;
}
std::string Tensor::str() const {
  if (!defined()) return "undefined";
  std::string s = impl().name.empty() ? "" : "'" + impl().name + "' ";
  return s + dtype_name(dtype()) + shape_str(shape()) + " " + device_name(device());
}

// ---- data access --------------------------------------------------------------------------
void* Tensor::raw_data() const {
  return static_cast<char*>(impl().storage->data()) + offset() * int64_t(dtype_size(dtype()));
}
template <class T>
T* Tensor::data() const {
  EMBER_CHECK(dtype() == dtype_of<T>(), "data<", dtype_name(dtype_of<T>()), ">: tensor ", str(), " has dtype ",
              dtype_name(dtype()));
  return static_cast<T*>(raw_data());
}
template float* Tensor::data<float>() const;
template double* Tensor::data<double>() const;
template int64_t* Tensor::data<int64_t>() const;
template bf16* Tensor::data<bf16>() const;

double Tensor::item() const {
  EMBER_CHECK(numel() == 1, "item: tensor ", str(), " has ", numel(), " elements, expected 1");
  Tensor c = device() == Device::CPU ? *this : to(Device::CPU);
  return load_as_double(c.raw_data(), c.dtype(), 0);
}
double Tensor::at(std::initializer_list<int64_t> index) const {
  EMBER_CHECK(int64_t(index.size()) == dim(), "at: ", index.size(), " indices for tensor ", str());
  if (device() == Device::CUDA) return to(Device::CPU).at(index);  // a debugging accessor: the copy is fine
  int64_t off = 0, d = 0;
  for (int64_t i : index) {
    EMBER_CHECK(i >= 0 && i < shape()[d], "at: index ", i, " out of range for dim ", d, " of ", str());
    off += i * strides()[d++];
  }
  return load_as_double(raw_data(), dtype(), off);
}
template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = to(Device::CPU).to(dtype_of<T>()).contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

// ---- in-place helpers ---------------------------------------------------------------------
Tensor& Tensor::fill_(double value) {
  if (device() == Device::CUDA) {  // one element uploaded, then broadcast by the strided copy (any dtype, any view)
    if (numel() > 0) copy_(full({}, value, dtype()).to(Device::CUDA).expand(shape()));
    return *this;
  }
  check_cpu("fill_", *this);
  void* base = raw_data();
  DType t = dtype();
  if (is_contiguous() && t == DType::Float32) {
    float* p = static_cast<float*>(base);
    std::fill(p, p + numel(), float(value));
  } else {
    for_each_strided<1>(shape(), {&strides()}, [&](int64_t, const std::array<int64_t, 1>& o) {
      store_from_double(base, t, o[0], value);
    });
  }
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  EMBER_CHECK(src.shape() == shape(), "copy_: source ", src.str(), " and destination ", str(), " differ in shape");
  if (device() == Device::CUDA || src.device() == Device::CUDA) {
    const auto& cuda = require_cuda("copy_");
    EMBER_CHECK(src.dtype() == dtype(), "copy_: a copy to or from cuda keeps the dtype (", src.str(), " -> ", str(),
                "); convert on the cpu with to(dtype)");
    if (numel() == 0) return *this;
    if (device() == Device::CUDA && src.device() == Device::CUDA) {
      if (src.is_contiguous() && is_contiguous()) cuda.copy_d2d(raw_data(), src.raw_data(), nbytes());
      else cuda.copy_strided(raw_data(), strides(), src.raw_data(), src.strides(), shape(), dtype_size(dtype()));
      return *this;
    }
    // Across devices the transfer is a flat byte copy: a strided side goes through a dense temporary
    // on its own device (the strided part then runs where the data lives).
    Tensor from = src;
    if (!from.is_contiguous()) from = empty(shape(), dtype(), src.device()).copy_(src);
    if (!is_contiguous()) return copy_(empty(shape(), dtype(), device()).copy_(from));
    if (device() == Device::CUDA) cuda.copy_h2d(raw_data(), from.raw_data(), nbytes());
    else cuda.copy_d2h(raw_data(), from.raw_data(), nbytes());
    return *this;
  }
  if (src.dtype() == dtype() && src.is_contiguous() && is_contiguous()) {
    std::memmove(raw_data(), src.raw_data(), nbytes());
    return *this;
  }
  void* dst_base = raw_data();
  const void* src_base = src.raw_data();
  DType dt = dtype(), st = src.dtype();
  for_each_strided<2>(shape(), {&strides(), &src.strides()}, [&](int64_t, const std::array<int64_t, 2>& o) {
    store_from_double(dst_base, dt, o[0], load_as_double(src_base, st, o[1]));
  });
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  EMBER_CHECK(other.shape() == shape(), "add_: ", other.str(), " and ", str(), " differ in shape");
  check_same_dtype("add_", *this, other);
  check_same_device("add_", *this, other);
  if (device() == Device::CUDA) {  // gradient accumulation of GPU tensors
    cuda_ops::add_(*this, other, alpha);
    return *this;
  }
  check_cpu("add_", *this);
  dispatch_float(dtype(), "add_", [&]<class T>() {
    T* d = data<T>();
    const T* s = other.data<T>();
    T a = T(alpha);
    if (is_contiguous() && other.is_contiguous()) {
      int64_t n = numel();
#pragma omp parallel for if (n > 65536) schedule(static)
      for (int64_t i = 0; i < n; ++i) d[i] += a * s[i];
    } else {
      for_each_strided<2>(shape(), {&strides(), &other.strides()},
                          [&](int64_t, const std::array<int64_t, 2>& o) { d[o[0]] += a * s[o[1]]; });
    }
  });
  return *this;
}

Tensor& Tensor::mul_(double factor) {
  if (device() == Device::CUDA) {  // the product on the GPU, then a device copy (copy_ names a strided tensor)
    NoGradGuard no_grad;
    return copy_(detach() * factor);
  }
  check_cpu("mul_", *this);
  dispatch_float(dtype(), "mul_", [&]<class T>() {
    T* d = data<T>();
    T f = T(factor);
    for_each_strided<1>(shape(), {&strides()}, [&](int64_t, const std::array<int64_t, 1>& o) { d[o[0]] *= f; });
  });
  return *this;
}

// ---- conversion ---------------------------------------------------------------------------
Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  out.copy_(*this);
  return record("clone", out, {*this}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor Tensor::to(DType t) const {
  if (t == dtype()) return *this;
  Tensor out;
  if (device() == Device::CUDA) {
    out = cuda_ops::convert(*this, t);
  } else {
    out = empty(shape(), t);
    out.copy_(*this);
  }
  DType from = dtype();
  if (!is_floating(t) || !is_floating(from)) return out;  // no gradient through int/bf16 casts
  return record("to_dtype", out, {*this}, [from](const Tensor& g) { return std::vector<Tensor>{g.to(from)}; });
}

Tensor Tensor::to(Device d) const {
  if (d == device()) return *this;
  Tensor out = empty(shape(), dtype(), d);
  out.copy_(*this);  // strided on either side is fine: copy_ goes through a dense temporary
  Device from = device();
  return record("to_device", out, {*this}, [from](const Tensor& g) { return std::vector<Tensor>{g.to(from)}; });
}

// ---- argument checks ----------------------------------------------------------------------
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch between ", a.str(), " and ", b.str());
}
void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  EMBER_CHECK(a.device() == b.device(), op, ": device mismatch between ", a.str(), " and ", b.str());
}
void check_defined(const char* op, const Tensor& t, const char* arg) {
  EMBER_CHECK(t.defined(), op, ": argument '", arg, "' is an undefined tensor");
}
void check_cpu(const char* op, const Tensor& t) {
  EMBER_CHECK(t.device() == Device::CPU, op, ": tensor ", t.str(), " is on ", device_name(t.device()),
              " but this op has no CUDA implementation yet; move it with .to(Device::CPU)");
}
void check_floating(const char* op, const Tensor& t) {
  EMBER_CHECK(is_floating(t.dtype()), op, ": tensor ", t.str(), " must be float32 or float64");
}

}  // namespace ember
