// Inverted dropout: forward and backward side by side.
// The mask comes from the Generator's Philox stream with the mapping of kernels/philox.h: value i
// of the draw keeps x[i] iff philox_uniform(philox_bits(seed, offset, i)) >= p, where offset is
// gen.reserve(n). The mask therefore depends only on (seed, offset, i): the same for any thread
// count, and the same as the CUDA kernel drawing with the same state.
#include "engine/ops.h"
#include "engine/ops/cuda_ops.h"
#include "engine/rng.h"
#include "engine/strided.h"
#include "kernels/philox.h"

namespace ember {

Tensor dropout(const Tensor& x_in, double p, bool training, Generator& gen) {
  check_defined("dropout", x_in, "input");
  check_floating("dropout", x_in);
  EMBER_CHECK(p >= 0 && p <= 1, "dropout: probability p=", p, " must be in [0, 1] (input ", x_in.str(), ")");
  if (!training || p == 0) return x_in;
  if (p == 1) {  // everything dropped (on either device); 1/(1-p) would be infinite
    Tensor y = Tensor::zeros(x_in.shape(), x_in.dtype(), x_in.device());
    return record("dropout", y, {x_in}, [shape = x_in.shape(), dtype = x_in.dtype(), dev = x_in.device()](const Tensor&) {
      return std::vector<Tensor>{Tensor::zeros(shape, dtype, dev)};
    });
  }
  if (cuda_ops::on_cuda(x_in)) return cuda_ops::dropout(x_in, p, gen);
  check_cpu("dropout", x_in);
  Tensor x = x_in.detach().contiguous();
  const int64_t n = x.numel();
  const uint64_t seed = gen.seed(), offset = gen.reserve(uint64_t(n));
  const float pf = float(p);
  // The mask holds 0 or 1/(1-p), so the backward is a single multiply.
  Tensor mask = Tensor::empty(x.shape(), x.dtype());
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_float(x.dtype(), "dropout", [&]<class T>() {
    const T scale = T(1.0 / (1.0 - p));
    const T* xp = x.data<T>();
    T* mp = mask.data<T>();
    T* yp = y.data<T>();
    const int64_t blocks = (n + 3) / 4;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t blk = 0; blk < blocks; ++blk) {
      const Philox4x32 bits = philox4x32_10(offset + uint64_t(blk), seed);  // values 4*blk .. 4*blk+3
      for (int64_t lane = 0; lane < 4; ++lane) {
        const int64_t i = 4 * blk + lane;
        if (i >= n) break;
        const T m = philox_dropout_keep(bits.v[lane], pf) ? scale : T(0);
        mp[i] = m;
        yp[i] = xp[i] * m;
      }
    }
  });
  return record("dropout", y, {x_in}, [mask](const Tensor& g) { return std::vector<Tensor>{mul(g, mask)}; });
}

}  // namespace ember
