// Pooling and batch norm (ember and cuDNN variants) against plain CPU loops written here.
// Outputs are NaN-poisoned before every run.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <limits>

#include <string>

#include "kernels/cpu/pool.h"
#include "kernels/cuda/variants.h"
#include "kernels/registry.h"
#include "tests/cuda/cuda_test_util.h"

namespace ember::cuda {
namespace {
using testing::DeviceArray;
using testing::rel_norm_err;

// ---------------------------------------------------------------- pooling references
struct PoolRef {
  std::vector<float> y, dx;
  std::vector<int64_t> indices;
};

PoolRef max_pool_ref(const Pool2dShape& s, const std::vector<float>& x, const std::vector<float>& dy) {
  const int64_t P = s.P(), Q = s.Q();
  PoolRef r{std::vector<float>(size_t(s.N * s.C * P * Q)), std::vector<float>(x.size(), 0.f),
            std::vector<int64_t>(size_t(s.N * s.C * P * Q))};
  for (int64_t nc = 0; nc < s.N * s.C; ++nc)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = 0; q < Q; ++q) {
        float best = -INFINITY;
        int64_t arg = -1;
        for (int64_t h = p * s.stride_h - s.pad_h; h < p * s.stride_h - s.pad_h + s.kernel_h; ++h)
          for (int64_t w = q * s.stride_w - s.pad_w; w < q * s.stride_w - s.pad_w + s.kernel_w; ++w)
            if (h >= 0 && h < s.H && w >= 0 && w < s.W && (arg < 0 || x[size_t((nc * s.H + h) * s.W + w)] > best))
              best = x[size_t((nc * s.H + h) * s.W + w)], arg = h * s.W + w;
        const size_t o = size_t((nc * P + p) * Q + q);
        r.y[o] = best, r.indices[o] = arg;
        r.dx[size_t(nc * s.H * s.W + arg)] += dy[o];
      }
  return r;
}

PoolRef avg_pool_ref(const Pool2dShape& s, const std::vector<float>& x, const std::vector<float>& dy) {
  const int64_t P = s.P(), Q = s.Q();
  PoolRef r{std::vector<float>(size_t(s.N * s.C * P * Q)), std::vector<float>(x.size(), 0.f), {}};
  for (int64_t nc = 0; nc < s.N * s.C; ++nc)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = 0; q < Q; ++q) {
        const size_t o = size_t((nc * P + p) * Q + q);
        // count_include_pad: the whole window; else its positions inside the input, counted here.
        float area = float(s.kernel_h * s.kernel_w);
        if (!s.count_include_pad) {
          area = 0;
          for (int64_t h = p * s.stride_h - s.pad_h; h < p * s.stride_h - s.pad_h + s.kernel_h; ++h)
            for (int64_t w = q * s.stride_w - s.pad_w; w < q * s.stride_w - s.pad_w + s.kernel_w; ++w)
              area += float(h >= 0 && h < s.H && w >= 0 && w < s.W);
        }
        double sum = 0;
        for (int64_t h = p * s.stride_h - s.pad_h; h < p * s.stride_h - s.pad_h + s.kernel_h; ++h)
          for (int64_t w = q * s.stride_w - s.pad_w; w < q * s.stride_w - s.pad_w + s.kernel_w; ++w)
            if (h >= 0 && h < s.H && w >= 0 && w < s.W) {
              sum += x[size_t((nc * s.H + h) * s.W + w)];
              r.dx[size_t((nc * s.H + h) * s.W + w)] += dy[o] / area;
            }
        r.y[o] = float(sum / area);
      }
  return r;
}

Pool2dShape pool(int64_t N, int64_t C, int64_t H, int64_t W, int64_t k, int64_t stride, int64_t pad) {
  Pool2dShape s;
  s.N = N, s.C = C, s.H = H, s.W = W, s.kernel_h = s.kernel_w = k, s.stride_h = s.stride_w = stride;
  s.pad_h = s.pad_w = pad;
  return s;
}

std::vector<std::string> impls_to_test() {
  std::vector<std::string> v = {"ember"};
  if (cudnn_available()) v.push_back("cudnn");
  return v;
}

std::vector<Pool2dShape> pool_shapes() {
  std::vector<Pool2dShape> shapes = {pool(2, 3, 7, 9, 2, 2, 0), pool(1, 4, 11, 10, 3, 2, 1), pool(3, 2, 8, 8, 3, 1, 1),
                                     pool(2, 5, 13, 6, 3, 3, 0)};
  shapes[1].kernel_w = 2, shapes[1].pad_w = 0, shapes[1].stride_w = 1;  // non-square window
  // Average pooling without counting the padding: windows at the border divide by fewer positions.
  for (size_t i : {size_t(1), size_t(2)}) {
    shapes.push_back(shapes[i]);
    shapes.back().count_include_pad = false;
  }
  shapes.push_back(pool(1, 2, 6, 7, 2, 1, 1));  // k2 s1 p1: corner windows hold one input
  shapes.back().count_include_pad = false;
  return shapes;
}

// No GPU needed: the kernels' per-value code (window cover, argmax, count_include_pad) on the host.
TEST(CudaPoolIndexing, HostEmulationMatchesReference) {
  uint32_t seed = 300;
  for (const Pool2dShape& s : pool_shapes()) {
    SCOPED_TRACE("pool " + std::to_string(s.H) + "x" + std::to_string(s.W) + " k" + std::to_string(s.kernel_h) + "x" +
                 std::to_string(s.kernel_w) + " stride " + std::to_string(s.stride_h) + " pad " + std::to_string(s.pad_h) +
                 (s.count_include_pad ? "" : " count_include_pad=false"));
    const size_t nx = size_t(s.N * s.C * s.H * s.W), ny = size_t(s.N * s.C * s.P() * s.Q());
    const auto x = testing::random_floats(nx, ++seed), dy = testing::random_floats(ny, ++seed);
    const PoolRef mref = max_pool_ref(s, x, dy), aref = avg_pool_ref(s, x, dy);
    std::vector<float> max_y(ny), max_dx(nx), avg_y(ny), avg_dx(nx);
    std::vector<int64_t> idx(ny);
    ember_pool::host_emulate(s, x.data(), dy.data(), max_y.data(), idx.data(), max_dx.data(), avg_y.data(), avg_dx.data());
    EXPECT_EQ(max_y, mref.y);
    EXPECT_EQ(idx, mref.indices);
    EXPECT_LE(rel_norm_err(max_dx, mref.dx), 1e-6);
    EXPECT_LE(rel_norm_err(avg_y, aref.y), 1e-6);
    EXPECT_LE(rel_norm_err(avg_dx, aref.dx), 1e-6);
  }
}

TEST(CudaPool, MaxAndAvgPoolMatchReference) {
  EMBER_REQUIRE_CUDA();
  cuda_variant_ops();
  uint32_t seed = 100;
  for (const Pool2dShape& s : pool_shapes()) {
    const size_t nx = size_t(s.N * s.C * s.H * s.W), ny = size_t(s.N * s.C * s.P() * s.Q());
    const auto x_host = testing::random_floats(nx, ++seed), dy_host = testing::random_floats(ny, ++seed);
    const PoolRef mref = max_pool_ref(s, x_host, dy_host), aref = avg_pool_ref(s, x_host, dy_host);
    DeviceArray<float> x(x_host), dy(dy_host), y(ny), dx(nx);
    DeviceArray<int64_t> idx(ny);
    for (const std::string& impl : impls_to_test()) {
      SCOPED_TRACE("pool " + impl + " shape " + std::to_string(s.H) + "x" + std::to_string(s.W) + " k" +
                   std::to_string(s.kernel_h) + "x" + std::to_string(s.kernel_w) +
                   (s.count_include_pad ? "" : " count_include_pad=false"));
      kernels::set_variant("pool", impl);
      y.poison(), dx.poison(), idx.poison();
      max_pool2d_forward(s, x.get(), y.get(), idx.get());
      max_pool2d_backward(s, x.get(), y.get(), dy.get(), idx.get(), dx.get());
      EXPECT_EQ(y.download(), mref.y);
      EXPECT_EQ(idx.download(), mref.indices);
      EXPECT_LE(rel_norm_err(dx.download(), mref.dx), 1e-6);
      y.poison(), dx.poison();
      avg_pool2d_forward(s, x.get(), y.get());
      avg_pool2d_backward(s, dy.get(), dx.get());
      EXPECT_LE(rel_norm_err(y.download(), aref.y), 1e-6);
      EXPECT_LE(rel_norm_err(dx.download(), aref.dx), 1e-6);
    }
    kernels::set_variant("pool", "");
  }
}

TEST(CudaPool, GlobalAveragePool) {
  EMBER_REQUIRE_CUDA();
  const int64_t N = 3, C = 5, HW = 49;
  const auto x_host = testing::random_floats(size_t(N * C * HW), 7), dy_host = testing::random_floats(size_t(N * C), 8);
  std::vector<float> y_ref(size_t(N * C)), dx_ref(size_t(N * C * HW));
  for (int64_t i = 0; i < N * C; ++i) {
    double sum = 0;
    for (int64_t j = 0; j < HW; ++j) sum += x_host[size_t(i * HW + j)], dx_ref[size_t(i * HW + j)] = dy_host[size_t(i)] / HW;
    y_ref[size_t(i)] = float(sum / HW);
  }
  DeviceArray<float> x(x_host), dy(dy_host), y(size_t(N * C)), dx(size_t(N * C * HW));
  y.poison(), dx.poison();
  global_avg_pool_forward(N, C, HW, x.get(), y.get());
  global_avg_pool_backward(N, C, HW, dy.get(), dx.get());
  EXPECT_LE(rel_norm_err(y.download(), y_ref), 1e-6);
  EXPECT_LE(rel_norm_err(dx.download(), dx_ref), 1e-6);
}

// Adaptive average pooling (adaptive_pool.cu) against kernels/cpu/pool.h's reference: downsampling
// with equal and with overlapping bins, upsampling (bins repeat inputs), odd and unequal sizes.
// {planes, H, W, OH, OW}
const std::vector<std::array<int64_t, 5>> kAdaptiveShapes = {
    {3, 6, 6, 3, 3}, {2, 10, 9, 4, 4}, {2, 5, 7, 3, 2}, {2, 2, 3, 7, 7}, {1, 7, 7, 7, 1}, {4, 13, 11, 5, 6}};

struct AdaptiveRef {
  std::vector<float> x, dy, y, dx;
  explicit AdaptiveRef(const std::array<int64_t, 5>& a, uint32_t seed) {
    const auto [planes, H, W, OH, OW] = a;
    x = testing::random_floats(size_t(planes * H * W), seed), dy = testing::random_floats(size_t(planes * OH * OW), seed + 1);
    y.resize(dy.size()), dx.resize(x.size());
    cpu::adaptive_avg_pool2d_forward_ref<float>(planes, H, W, OH, OW, x.data(), y.data());
    cpu::adaptive_avg_pool2d_backward_ref<float>(planes, H, W, OH, OW, dy.data(), dx.data());
  }
};

// No GPU needed: the kernels' per-value code run by host loops.
TEST(CudaPoolIndexing, AdaptiveAverageHostEmulationMatchesReference) {
  uint32_t seed = 300;
  for (const auto& a : kAdaptiveShapes) {
    const auto [planes, H, W, OH, OW] = a;
    SCOPED_TRACE(std::to_string(H) + "x" + std::to_string(W) + " -> " + std::to_string(OH) + "x" + std::to_string(OW));
    const AdaptiveRef r(a, seed += 2);
    std::vector<float> y(r.y.size(), NAN), dx(r.dx.size(), NAN);
    ember_pool::host_emulate_adaptive(planes, H, W, OH, OW, r.x.data(), r.dy.data(), y.data(), dx.data());
    EXPECT_LE(rel_norm_err(y, r.y), 1e-6) << "forward";
    EXPECT_LE(rel_norm_err(dx, r.dx), 1e-6) << "backward";
  }
}

TEST(CudaPool, AdaptiveAveragePoolMatchesReference) {
  EMBER_REQUIRE_CUDA();
  uint32_t seed = 300;
  for (const auto& a : kAdaptiveShapes) {
    const auto [planes, H, W, OH, OW] = a;
    SCOPED_TRACE(std::to_string(H) + "x" + std::to_string(W) + " -> " + std::to_string(OH) + "x" + std::to_string(OW));
    const AdaptiveRef r(a, seed += 2);
    DeviceArray<float> x(r.x), dy(r.dy), y(r.y.size()), dx(r.dx.size());
    y.poison(), dx.poison();
    adaptive_avg_pool2d_forward(planes, H, W, OH, OW, x.get(), y.get());
    adaptive_avg_pool2d_backward(planes, H, W, OH, OW, dy.get(), dx.get());
    EXPECT_LE(rel_norm_err(y.download(), r.y), 1e-6) << "forward";
    EXPECT_LE(rel_norm_err(dx.download(), r.dx), 1e-6) << "backward";
  }
}

// ---------------------------------------------------------------- batch norm reference (double)
struct BnRef {
  std::vector<float> y, mean, invstd, running_mean, running_var, dx, dgamma, dbeta;
};

BnRef batchnorm_ref(const BatchNormArgs& a, const std::vector<float>& x, const std::vector<float>& gamma,
                    const std::vector<float>& beta, const std::vector<float>& dy, std::vector<float> running_mean,
                    std::vector<float> running_var) {
  const int64_t M = a.N * a.HW;
  BnRef r;
  r.y.resize(x.size()), r.dx.resize(x.size());
  auto at = [&](int64_t n, int64_t c, int64_t i) { return size_t((n * a.C + c) * a.HW + i); };
  for (int64_t c = 0; c < a.C; ++c) {
    double sum = 0, sq = 0;
    for (int64_t n = 0; n < a.N; ++n)
      for (int64_t i = 0; i < a.HW; ++i) sum += x[at(n, c, i)];
    const double mean = sum / M;
    for (int64_t n = 0; n < a.N; ++n)
      for (int64_t i = 0; i < a.HW; ++i) sq += (x[at(n, c, i)] - mean) * (x[at(n, c, i)] - mean);
    const double var = sq / M, invstd = 1.0 / std::sqrt(var + a.eps);
    r.mean.push_back(float(mean)), r.invstd.push_back(float(invstd));
    running_mean[size_t(c)] = float((1 - a.momentum) * running_mean[size_t(c)] + a.momentum * mean);
    running_var[size_t(c)] = float((1 - a.momentum) * running_var[size_t(c)] + a.momentum * sq / (M - 1));
    double sdy = 0, sdyx = 0;
    for (int64_t n = 0; n < a.N; ++n)
      for (int64_t i = 0; i < a.HW; ++i) {
        const size_t k = at(n, c, i);
        const double xhat = (x[k] - mean) * invstd, out = gamma[size_t(c)] * xhat + beta[size_t(c)];
        r.y[k] = float(a.relu ? std::max(out, 0.0) : out);
        const double g = (a.relu && out <= 0) ? 0.0 : dy[k];
        sdy += g, sdyx += g * xhat;
      }
    r.dgamma.push_back(float(sdyx)), r.dbeta.push_back(float(sdy));
    for (int64_t n = 0; n < a.N; ++n)
      for (int64_t i = 0; i < a.HW; ++i) {
        const size_t k = at(n, c, i);
        const double xhat = (x[k] - mean) * invstd, out = gamma[size_t(c)] * xhat + beta[size_t(c)];
        const double g = (a.relu && out <= 0) ? 0.0 : dy[k];
        r.dx[k] = float(gamma[size_t(c)] * invstd / M * (M * g - sdy - xhat * sdyx));
      }
  }
  r.running_mean = running_mean, r.running_var = running_var;
  return r;
}

// (N, C, HW): H*W % 4 == 0 takes the float4 path; 5 x 4100 and 5 x 4099 values per channel span
// 2 and 5 of the statistics kernels' slices at the default 4096 units (more at 1024), and 3 x 22000
// (16500 float4s) spans 2 at 16384, so the slices' merge runs at every slice size.
std::vector<std::array<int64_t, 3>> bn_shapes() {
  return {{3, 6, 1}, {3, 6, 35}, {3, 6, 64}, {5, 2, 4100}, {5, 2, 4099}, {3, 2, 22000}};
}
const char* const kBnSlices[] = {"u4096", "u1024", "u16384"};  // registry op "bn_slice"

// No GPU needed: ember's batch-norm kernels' per-thread, per-channel and per-element code on the host,
// at every statistics slice size.
TEST(CudaBatchNormHost, HostEmulationMatchesReference) {
  cuda_variant_ops();
  for (const char* slice : kBnSlices)
  for (bool relu : {false, true})
    for (const auto& [N, C, HW] : bn_shapes()) {
      kernels::set_variant("bn_slice", slice);
      BatchNormArgs a;
      a.N = N, a.C = C, a.HW = HW, a.relu = relu;
      SCOPED_TRACE(std::string(slice) + " relu " + std::to_string(relu) + " N " + std::to_string(N) + " C " +
                   std::to_string(C) + " HW " + std::to_string(HW));
      const size_t n = size_t(N * C * HW), nc = size_t(C);
      const auto x = testing::random_floats(n, 11, 2.f, 5.f);  // non-zero mean: tests stability
      const auto dy = testing::random_floats(n, 12), gamma = testing::random_floats(nc, 13, 0.5f, 1.5f);
      const auto beta = testing::random_floats(nc, 14);
      auto rm = testing::random_floats(nc, 15), rv = testing::random_floats(nc, 16, 0.5f, 2.f);
      const BnRef ref = batchnorm_ref(a, x, gamma, beta, dy, rm, rv);
      const float nan = std::numeric_limits<float>::quiet_NaN();
      std::vector<float> y(n, nan), mean(nc, nan), invstd(nc, nan), dx(n, nan), dgamma(nc, nan), dbeta(nc, nan);
      ember_bn::host_emulate_forward_train(a, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), invstd.data(),
                                           rm.data(), rv.data());
      ember_bn::host_emulate_backward(a, x.data(), y.data(), dy.data(), gamma.data(), mean.data(), invstd.data(),
                                      dx.data(), dgamma.data(), dbeta.data());
      EXPECT_LE(rel_norm_err(y, ref.y), 1e-5);
      EXPECT_LE(rel_norm_err(mean, ref.mean), 1e-5);
      EXPECT_LE(rel_norm_err(invstd, ref.invstd), 1e-4);
      EXPECT_LE(rel_norm_err(rm, ref.running_mean), 1e-5);
      EXPECT_LE(rel_norm_err(rv, ref.running_var), 1e-4);
      EXPECT_LE(rel_norm_err(dx, ref.dx), 1e-4);
      EXPECT_LE(rel_norm_err(dgamma, ref.dgamma), 1e-5);
      EXPECT_LE(rel_norm_err(dbeta, ref.dbeta), 1e-5);
    }
  kernels::set_variant("bn_slice", "");
}

TEST(CudaBatchNorm, TrainEvalBackwardMatchReference) {
  EMBER_REQUIRE_CUDA();
  cuda_variant_ops();
  for (bool relu : {false, true})
    for (const auto& [N, channels, HW] : bn_shapes()) {
      BatchNormArgs a;
      a.N = N, a.C = channels, a.HW = HW, a.relu = relu;
      const size_t n = size_t(a.N * a.C * a.HW), C = size_t(a.C);
      const auto x_host = testing::random_floats(n, 11, 2.f, 5.f);  // non-zero mean: tests stability
      const auto dy_host = testing::random_floats(n, 12), gamma_host = testing::random_floats(C, 13, 0.5f, 1.5f);
      const auto beta_host = testing::random_floats(C, 14), rm_host = testing::random_floats(C, 15);
      const auto rv_host = testing::random_floats(C, 16, 0.5f, 2.f);
      const BnRef ref = batchnorm_ref(a, x_host, gamma_host, beta_host, dy_host, rm_host, rv_host);
      for (const std::string& impl : impls_to_test())
      for (const char* slice : kBnSlices) {
        if (impl != "ember" && slice != kBnSlices[0]) continue;  // the slice size is ember's own
        SCOPED_TRACE("bn " + impl + " " + slice + " relu " + std::to_string(relu) + " N " + std::to_string(N) + " C " +
                     std::to_string(channels) + " HW " + std::to_string(HW));
        kernels::set_variant("bn", impl);
        kernels::set_variant("bn_slice", slice);
        DeviceArray<float> x(x_host), dy(dy_host), gamma(gamma_host), beta(beta_host), rm(rm_host), rv(rv_host);
        DeviceArray<float> y(n), mean(C), invstd(C), dx(n), dgamma(C), dbeta(C);
        y.poison(), mean.poison(), invstd.poison(), dx.poison(), dgamma.poison(), dbeta.poison();
        batchnorm_forward_train(a, x.get(), gamma.get(), beta.get(), y.get(), mean.get(), invstd.get(), rm.get(), rv.get());
        batchnorm_backward(a, x.get(), y.get(), dy.get(), gamma.get(), mean.get(), invstd.get(), dx.get(), dgamma.get(),
                           dbeta.get());
        EXPECT_LE(rel_norm_err(y.download(), ref.y), 1e-5);
        EXPECT_LE(rel_norm_err(mean.download(), ref.mean), 1e-5);
        EXPECT_LE(rel_norm_err(invstd.download(), ref.invstd), 1e-4);
        EXPECT_LE(rel_norm_err(rm.download(), ref.running_mean), 1e-5);
        EXPECT_LE(rel_norm_err(rv.download(), ref.running_var), 1e-4);
        EXPECT_LE(rel_norm_err(dx.download(), ref.dx), 1e-4);
        EXPECT_LE(rel_norm_err(dgamma.download(), ref.dgamma), 1e-5);
        EXPECT_LE(rel_norm_err(dbeta.download(), ref.dbeta), 1e-5);
        // Eval with the updated running stats: y = gamma (x - rm) / sqrt(rv + eps) + beta.
        std::vector<float> eval_ref(n);
        for (size_t k = 0; k < n; ++k) {
          const size_t c = (k / size_t(HW)) % C;
          const double out = gamma_host[c] * (x_host[k] - ref.running_mean[c]) / std::sqrt(ref.running_var[c] + a.eps) +
                             beta_host[c];
          eval_ref[k] = float(relu ? std::max(out, 0.0) : out);
        }
        y.poison();
        batchnorm_forward_eval(a, x.get(), gamma.get(), beta.get(), rm.get(), rv.get(), y.get());
        EXPECT_LE(rel_norm_err(y.download(), eval_ref), 1e-4);
      }
      kernels::set_variant("bn", "");
      kernels::set_variant("bn_slice", "");
    }
}

}  // namespace
}  // namespace ember::cuda
