// Strided copies on the GPU (kernels/cuda/copy.cu, Tensor::copy_): the kernel's index math on the
// host against the CPU's copy_ for random views (permuted, stepped slices, broadcast), the dim
// merging, and, with a device, copy_ between views of any layout on the GPU and across devices, fill_,
// random fills, and dtype conversion (to(dtype), bit for bit with the CPU).
// The host tests need no GPU; the device tests skip without one (written in a session without a GPU).
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "engine/ops.h"
#include "engine/ops/cuda_tensor_access.h"
#include "engine/rng.h"
#include "tests/cuda/cuda_test_util.h"

namespace ember {
namespace {

// A random non-contiguous view of a fresh [d0..] tensor: permuted, sliced with steps, maybe expanded.
Tensor random_view(std::mt19937& rng, const Tensor& base) {
  Tensor v = base;
  std::vector<int64_t> order(size_t(v.dim()));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  v = v.permute(order);
  for (int64_t d = 0; d < v.dim(); ++d) {
    const int64_t n = v.shape()[size_t(d)];
    if (n < 3) continue;
    const int64_t start = int64_t(rng() % 2), step = 1 + int64_t(rng() % 2);
    v = v.slice(d, start, n, step);
  }
  return v;
}

// A destination of `shape` in `base`: dims permuted by `order`, and with spare = 1 one spare row in
// every dim of the base, so the view has gaps between its rows (identity order and spare = 0: a
// contiguous destination, whose dims merge wherever the source's do).
Tensor view_into(const Tensor& base, const std::vector<int64_t>& order, const Shape& shape) {
  Tensor v = base.permute(order);
  for (size_t d = 0; d < shape.size(); ++d) v = v.slice(int64_t(d), 0, shape[d]);
  return v;
}
Shape base_shape_for(const std::vector<int64_t>& order, const Shape& shape, int64_t spare) {
  Shape base(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) base[size_t(order[i])] = shape[i] + spare;
  return base;
}

Shape random_shape(std::mt19937& rng) {
  Shape s(1 + rng() % 6);
  for (auto& n : s) n = 1 + int64_t(rng() % 5);
  return s;
}

// Copies a random view of a random tensor into a random (strided or contiguous) destination with the kernel's code
// (host emulation) and with the CPU's copy_; the whole destination buffers must agree bit for bit,
// so a skipped, misplaced or stray write fails.
void check_emulated_copy(std::mt19937& rng, DType dtype) {
  Generator gen(rng());
  const Tensor src = random_view(rng, Tensor::uniform(random_shape(rng), -9, 9, gen, DType::Float64).to(dtype));
  std::vector<int64_t> order(src.shape().size());
  std::iota(order.begin(), order.end(), 0);
  const bool contiguous_destination = rng() % 3 == 0;
  if (!contiguous_destination) std::shuffle(order.begin(), order.end(), rng);
  const Tensor emulated_base =
      Tensor::full(base_shape_for(order, src.shape(), contiguous_destination ? 0 : 1), -7.0, dtype);
  const Tensor reference_base = emulated_base.clone();
  Tensor emulated = view_into(emulated_base, order, src.shape()), reference = view_into(reference_base, order, src.shape());
  reference.copy_(src);
  const auto args = cuda::make_strided_copy(src.shape(), emulated.strides(), src.strides());
  cuda::host_emulate_copy_strided(args, dtype_size(dtype), src.raw_data(), emulated.raw_data());
  EXPECT_EQ(emulated_base.to_vector<double>(), reference_base.to_vector<double>())
      << dtype_name(dtype) << " copy of " << src.str() << " strides " << shape_str(src.strides()) << " into strides "
      << shape_str(emulated.strides());
}

TEST(CudaCopyHost, EmulatedKernelMatchesCpuCopyOnRandomViews) {
  std::mt19937 rng(2026);
  for (int round = 0; round < 60; ++round)
    for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) check_emulated_copy(rng, dtype);
}

// Broadcast sources (stride 0), as the GPU's broadcast_to uses them.
TEST(CudaCopyHost, EmulatedKernelExpandsStrideZeroSources) {
  const Tensor src = Tensor::from_vector({1.f, 2.f, 3.f}, {3, 1}).expand({2, 3, 4});
  Tensor dst = Tensor::zeros({2, 3, 4});
  cuda::host_emulate_copy_strided(cuda::make_strided_copy(src.shape(), dst.strides(), src.strides()), 4,
                                  src.raw_data(), dst.raw_data());
  EXPECT_EQ(dst.to_vector<float>(), src.contiguous().to_vector<float>());
}

TEST(CudaCopyHost, MergesContiguousDimsAndDropsOnes) {
  // A contiguous [2, 3, 1, 5] copy is one run of 30 elements.
  auto a = cuda::make_strided_copy({2, 3, 1, 5}, {15, 5, 5, 1}, {15, 5, 5, 1});
  ASSERT_EQ(a.ndim, 1);
  EXPECT_EQ(a.shape[0], 30);
  // The interior of a padded [N, C, H+2, W+2] written from a dense [N, C, H, W]: (N C) merge, H and W stay.
  a = cuda::make_strided_copy({2, 3, 4, 5}, {3 * 6 * 7, 6 * 7, 7, 1}, {60, 20, 5, 1});
  ASSERT_EQ(a.ndim, 3);
  EXPECT_EQ(a.shape[0], 6);
  EXPECT_EQ(a.shape[1], 4);
  EXPECT_EQ(a.shape[2], 5);
  EXPECT_EQ(a.dst_strides[0], 42);
  EXPECT_EQ(a.src_strides[0], 20);
  // Ten dims that do not merge (a transpose of every pair) exceed kMaxDims and say so.
  std::vector<int64_t> shape(10, 2), dst(10), src(10);
  for (int d = 9; d >= 0; --d) dst[size_t(d)] = int64_t(1) << (9 - d), src[size_t(d)] = int64_t(1) << d;
  try {
    (void)cuda::make_strided_copy(shape, dst, src);
    FAIL() << "expected a too-many-dims error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("at most 8"), std::string::npos) << e.what();
  }
}

// Values that probe every conversion: ties for bfloat16 rounding (1 + 2^-8 lies halfway between two
// bfloat16 neighbours), negatives and fractions for int64 truncation, large magnitudes, zero.
Tensor conversion_probe(DType dtype) {
  std::vector<double> v = {0.0, -0.0, 1.0, -2.5, 2.5, 3.999, -3.999, 1.0 + 1.0 / 256, 1.0 + 3.0 / 256, 1e10, -7e9,
                           0.1, 123456.789, -1.0 / 3};
  if (dtype != DType::Int64) v.push_back(std::numeric_limits<double>::quiet_NaN());
  return Tensor::from_vector(v, {int64_t(v.size())}).to(dtype);
}
std::vector<uint8_t> bytes_of(const Tensor& t) {
  const Tensor c = t.to(Device::CPU).contiguous();
  const auto* p = static_cast<const uint8_t*>(c.raw_data());
  return std::vector<uint8_t>(p, p + c.nbytes());
}
constexpr DType kAllDtypes[] = {DType::Float32, DType::Float64, DType::Int64, DType::BFloat16};

// The conversion kernel's per-element code against the CPU's to(dtype), bit for bit, for every pair.
TEST(CudaCopyHost, EmulatedConversionMatchesCpuBitForBit) {
  for (DType from : kAllDtypes)
    for (DType to : kAllDtypes) {
      if (from == to) continue;
      const Tensor src = conversion_probe(from);
      const Tensor want = src.to(to);
      Tensor got = Tensor::empty(src.shape(), to);
      cuda::host_emulate_convert(src.numel(), cuda_ops::detail::elem_type_of(from), cuda_ops::detail::elem_type_of(to),
                                 src.raw_data(), got.raw_data());
      EXPECT_EQ(bytes_of(got), bytes_of(want)) << dtype_name(from) << " -> " << dtype_name(to);
    }
}

// ---- on a device ----

// The same copy on the GPU (src and destination views of GPU tensors) and on the CPU; the whole
// destination buffers must agree bit for bit.
TEST(CudaCopy, CopyBetweenViewsOfAnyLayoutMatchesCpu) {
  EMBER_REQUIRE_CUDA();
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) {
      Generator gen(rng());
      const Tensor src_base = Tensor::uniform(random_shape(rng), -9, 9, gen, DType::Float64).to(dtype);
      std::mt19937 view_rng = rng;  // the same view of both copies of the data
      const Tensor src_cpu = random_view(view_rng, src_base);
      view_rng = rng;
      const Tensor src_gpu = random_view(view_rng, src_base.to(Device::CUDA));
      rng = view_rng;
      std::vector<int64_t> order(src_cpu.shape().size());
      std::iota(order.begin(), order.end(), 0);
      std::shuffle(order.begin(), order.end(), rng);
      const Tensor cpu_base = Tensor::full(base_shape_for(order, src_cpu.shape(), 1), -7.0, dtype);
      const Tensor gpu_base = cpu_base.to(Device::CUDA);
      view_into(cpu_base, order, src_cpu.shape()).copy_(src_cpu);
      Tensor gpu_view = view_into(gpu_base, order, src_cpu.shape());
      gpu_view.copy_(src_gpu);
      EXPECT_EQ(gpu_base.to(Device::CPU).to_vector<double>(), cpu_base.to_vector<double>())
          << dtype_name(dtype) << " " << src_cpu.str() << " strides " << shape_str(src_cpu.strides());
      // contiguous() of a strided GPU view, and to(cpu) of one, give the view's values.
      EXPECT_EQ(src_gpu.contiguous().to(Device::CPU).to_vector<double>(), src_cpu.to_vector<double>());
      EXPECT_EQ(src_gpu.to(Device::CPU).to_vector<double>(), src_cpu.to_vector<double>());
    }
  }
}

// Across devices with a strided side: a transposed CPU tensor into a slice of a GPU tensor and back.
TEST(CudaCopy, CopyAcrossDevicesIntoAndFromStridedViews) {
  EMBER_REQUIRE_CUDA();
  Generator gen(3);
  const Tensor a = Tensor::normal({4, 6}, 0, 1, gen);
  Tensor gpu = Tensor::zeros({8, 5}, DType::Float32, Device::CUDA);
  gpu.slice(0, 1, 7).slice(1, 0, 4).copy_(a.t());  // CPU transposed -> GPU strided
  const Tensor back = gpu.to(Device::CPU);
  for (int64_t i = 0; i < 8; ++i)
    for (int64_t j = 0; j < 5; ++j) {
      const bool inside = i >= 1 && i < 7 && j < 4;
      EXPECT_EQ(back.at({i, j}), inside ? a.at({j, i - 1}) : 0.0) << i << "," << j;
    }
  Tensor cpu = Tensor::zeros({6, 4});
  cpu.t().copy_(gpu.slice(0, 1, 7).slice(1, 0, 4).t());  // GPU strided -> CPU strided
  EXPECT_EQ(cpu.to_vector<float>(), a.t().contiguous().to_vector<float>());
}

// fill_ and zero_ on GPU tensors: a one-element upload broadcast by the strided copy, so every dtype
// and every view; elements outside the view keep their values.
TEST(CudaCopy, FillWritesEveryElementOfTheViewOnly) {
  EMBER_REQUIRE_CUDA();
  for (DType dtype : {DType::Float32, DType::Float64, DType::Int64}) {
    const Tensor cpu_base = Tensor::full({4, 6}, 5.0, dtype);
    const Tensor gpu_base = cpu_base.to(Device::CUDA);
    cpu_base.slice(1, 1, 6, 2).t().fill_(-3.0);
    Tensor view = gpu_base.slice(1, 1, 6, 2).t();
    view.fill_(-3.0);
    EXPECT_EQ(gpu_base.to(Device::CPU).to_vector<double>(), cpu_base.to_vector<double>()) << dtype_name(dtype);
    Tensor whole = gpu_base;
    whole.zero_();
    EXPECT_EQ(gpu_base.to(Device::CPU).to_vector<double>(), std::vector<double>(24, 0.0)) << dtype_name(dtype);
  }
}

// Random fills of GPU tensors (generated on the CPU, then copied) equal a CPU fill from the same state.
TEST(CudaCopy, RandomFillsOfGpuTensorsMatchTheCpu) {
  EMBER_REQUIRE_CUDA();
  Generator cpu_gen(77), gpu_gen(77);
  Tensor cpu = Tensor::empty({3, 5}), gpu = Tensor::empty({3, 5}, DType::Float32, Device::CUDA);
  cpu_gen.fill_uniform(cpu, -2, 3);
  gpu_gen.fill_uniform(gpu, -2, 3);
  EXPECT_EQ(gpu.to(Device::CPU).to_vector<float>(), cpu.to_vector<float>());
  cpu_gen.fill_normal(cpu, 1, 2);
  gpu_gen.fill_normal(gpu, 1, 2);
  EXPECT_EQ(gpu.to(Device::CPU).to_vector<float>(), cpu.to_vector<float>());
}

// to(dtype) on the GPU gives the CPU's bits for every pair, also from a strided view.
TEST(CudaCopy, DtypeConversionsMatchCpuBitForBit) {
  EMBER_REQUIRE_CUDA();
  for (DType from : kAllDtypes)
    for (DType to : kAllDtypes) {
      const Tensor src = conversion_probe(from);
      EXPECT_EQ(bytes_of(src.to(Device::CUDA).to(to)), bytes_of(src.to(to))) << dtype_name(from) << " -> " << dtype_name(to);
      const Tensor strided = src.slice(0, 1, src.numel(), 3);
      EXPECT_EQ(bytes_of(strided.to(Device::CUDA).slice(0, 0, strided.numel()).to(to)), bytes_of(strided.to(to)));
    }
}

TEST(CudaCopy, CopyAcrossDevicesKeepsTheDtypeOrSaysSo) {
  EMBER_REQUIRE_CUDA();
  Tensor gpu = Tensor::zeros({3}, DType::Float32, Device::CUDA);
  try {
    gpu.copy_(Tensor::zeros({3}, DType::Float64));
    FAIL() << "expected a dtype error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("keeps the dtype"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ember
