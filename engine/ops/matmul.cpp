// matmul and linear on top of the GEMM kernels (kernels/cpu/gemm.h; cuBLAS on the GPU): forward and
// backward. Transposes are passed to the GEMM as flags instead of being materialised.
#include <algorithm>

#include "engine/ops.h"
#include "engine/ops/cuda_ops.h"
#include "engine/strided.h"
#include "kernels/cpu/gemm.h"

namespace ember {
namespace {

// A 2-D operand the GEMM can read directly: row-major contiguous, or a transposed view of one.
struct GemmOperand {
  Tensor t;  // keeps the data alive
  bool trans = false;
  int64_t ld = 0;
};
GemmOperand as_gemm_operand(const Tensor& m) {
  if (m.strides()[1] == 1 && m.strides()[0] >= m.shape()[1]) return {m, false, m.strides()[0]};
  if (m.strides()[0] == 1 && m.strides()[1] >= m.shape()[0]) return {m, true, m.strides()[1]};
  Tensor c = m.contiguous();
  return {c, false, c.shape()[1]};
}

// C[M,N] = A[M,K] @ B[K,N] (+ beta * C), for 2-D views of any layout; C is row-major contiguous.
// On the GPU: cuBLAS (cuda_ops::gemm), with the same transpose flags and leading dimensions.
template <class T>
void gemm_2d(const Tensor& a, const Tensor& b, Tensor& c, T beta) {
  GemmOperand A = as_gemm_operand(a), B = as_gemm_operand(b);
  const int64_t M = a.shape()[0], K = a.shape()[1], N = b.shape()[1];
  if (M == 0 || N == 0) return;
  if (cuda_ops::on_cuda(c)) {
    cuda_ops::gemm(A.trans, B.trans, M, N, K, A.t, std::max<int64_t>(A.ld, 1), B.t, std::max<int64_t>(B.ld, 1),
                   double(beta), c, N);
    return;
  }
  cpu::gemm<T>(A.trans, B.trans, M, N, K, T(1), A.t.template data<T>(), std::max<int64_t>(A.ld, 1),
               B.t.template data<T>(), std::max<int64_t>(B.ld, 1), beta, c.template data<T>(), N);
}

Tensor matmul_forward(const Tensor& a, const Tensor& b) {
  if (a.dim() == 2 && b.dim() == 2) {
    Tensor c = Tensor::empty({a.shape()[0], b.shape()[1]}, a.dtype());
    dispatch_float(a.dtype(), "matmul", [&]<class T>() { gemm_2d<T>(a, b, c, T(0)); });
    return c;
  }
  // Batched: [B,M,K] x [B,K,N]; a 2-D operand is shared by every batch entry.
  const int64_t batch = a.dim() == 3 ? a.shape()[0] : b.shape()[0];
  const int64_t M = a.shape()[a.dim() - 2], N = b.shape()[b.dim() - 1];
  Tensor c = Tensor::empty({batch, M, N}, a.dtype());
  dispatch_float(a.dtype(), "matmul", [&]<class T>() {
    for (int64_t i = 0; i < batch; ++i) {
      Tensor ci = c.select(0, i);
      gemm_2d<T>(a.dim() == 3 ? a.select(0, i) : a, b.dim() == 3 ? b.select(0, i) : b, ci, T(0));
    }
  });
  return c;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_defined("matmul", a, "a");
  check_defined("matmul", b, "b");
  check_same_dtype("matmul", a, b);
  check_same_device("matmul", a, b);
  check_floating("matmul", a);
  EMBER_CHECK((a.dim() == 2 || a.dim() == 3) && (b.dim() == 2 || b.dim() == 3), "matmul: expected 2-D or 3-D operands, got ",
              a.str(), " and ", b.str());
  EMBER_CHECK(a.shape()[a.dim() - 1] == b.shape()[b.dim() - 2], "matmul: inner dimensions differ: ", shape_str(a.shape()),
              " x ", shape_str(b.shape()));
  if (a.dim() == 3 && b.dim() == 3)
    EMBER_CHECK(a.shape()[0] == b.shape()[0], "matmul: batch sizes differ: ", shape_str(a.shape()), " x ",
                shape_str(b.shape()));
  // Detached operands: the views taken inside the forward are bookkeeping, not graph nodes.
  Tensor c = matmul_forward(a.detach(), b.detach());
  return record("matmul", c, {a, b}, [a = a.detach(), b = b.detach()](const Tensor& g) {
    // dA = g B^T, dB = A^T g; a 2-D operand shared across the batch sums its batch gradients.
    Tensor ga = matmul_forward(g, b.transpose(-1, -2));
    Tensor gb = matmul_forward(a.transpose(-1, -2), g);
    if (a.dim() == 2 && ga.dim() == 3) ga = sum(ga, {0});
    if (b.dim() == 2 && gb.dim() == 3) gb = sum(gb, {0});
    return std::vector<Tensor>{ga, gb};
  });
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  check_defined("linear", x, "x");
  check_defined("linear", w, "weight");
  EMBER_CHECK(x.dim() == 2 && w.dim() == 2, "linear: expected x [N, in] and weight [out, in], got ", x.str(), " and ",
              w.str());
  EMBER_CHECK(x.shape()[1] == w.shape()[1], "linear: input features ", x.shape()[1], " of ", x.str(),
              " do not match weight ", w.str());
  check_same_dtype("linear", x, w);
  check_same_device("linear", x, w);
  check_floating("linear", x);
  if (b.defined()) {
    check_same_dtype("linear", x, b);
    check_same_device("linear", x, b);
    EMBER_CHECK(b.dim() == 1 && b.shape()[0] == w.shape()[0], "linear: bias ", b.str(), " does not match weight ", w.str());
  }
  if (cuda_ops::on_cuda(x)) return cuda_ops::linear(x, w, b);
  check_cpu("linear", x);
  const int64_t N = x.shape()[0], O = w.shape()[0];
  Tensor y = Tensor::empty({N, O}, x.dtype());
  dispatch_float(x.dtype(), "linear", [&]<class T>() {
    // Start from the broadcast bias and accumulate x w^T onto it (beta = 1): one pass over y.
    T* yp = y.data<T>();
    if (b.defined()) {
      Tensor bc = b.contiguous();
      const T* bp = bc.data<T>();
      for (int64_t i = 0; i < N; ++i) std::copy(bp, bp + O, yp + i * O);
    }
    gemm_2d<T>(x.detach(), w.detach().t(), y, b.defined() ? T(1) : T(0));
  });
  // No data gradient for a network's input batch (first layer): saves a third of that layer's backward.
  const bool need_gx = x.requires_grad();
  return record("linear", y, {x, w, b}, [x = x.detach(), w = w.detach(), has_b = b.defined(), need_gx](const Tensor& g) {
    Tensor gx = need_gx ? matmul_forward(g, w) : Tensor();  // [N,out] x [out,in]
    Tensor gw = matmul_forward(g.t(), x);           // [out,N] x [N,in]
    Tensor gb = has_b ? sum(g, {0}) : Tensor();
    return std::vector<Tensor>{gx, gw, gb};
  });
}

}  // namespace ember
