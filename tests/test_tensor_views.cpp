// Tensor factories, dtypes, metadata and views. Views must share storage (same raw_data arithmetic,
// no copies); every expected value is computed from the index arithmetic, not from our own output.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/ops.h"
#include "engine/rng.h"

namespace {

using namespace ember;
using ::testing::HasSubstr;

// Address of element `index` of t computed from its strides (checks views point into the base).
const char* element_address(const Tensor& t, const std::vector<int64_t>& index) {
  int64_t off = 0;
  for (size_t d = 0; d < index.size(); ++d) off += index[d] * t.strides()[d];
  return static_cast<const char*>(t.raw_data()) + off * int64_t(dtype_size(t.dtype()));
}

// arange(n) reshaped to `shape`, float32: value == row-major linear index.
Tensor iota(const Shape& shape) { return Tensor::arange(shape_numel(shape)).reshape(shape); }

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no ember::Error thrown>";
}

TEST(Factories, ShapesDtypesAndValues) {
  Tensor z = Tensor::zeros({2, 3});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.strides(), (Shape{3, 1}));
  EXPECT_EQ(z.dtype(), DType::Float32);
  EXPECT_EQ(z.device(), Device::CPU);
  EXPECT_EQ(z.numel(), 6);
  EXPECT_EQ(z.nbytes(), 24u);
  for (float v : z.to_vector<float>()) EXPECT_EQ(v, 0.f);

  for (DType t : {DType::Float32, DType::Float64, DType::Int64, DType::BFloat16}) {
    Tensor f = Tensor::full({3, 2}, 7.0, t);
    EXPECT_EQ(f.dtype(), t);
    EXPECT_EQ(f.nbytes(), 6 * dtype_size(t));
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 2; ++j) EXPECT_EQ(f.at({i, j}), 7.0) << dtype_name(t);
    Tensor o = Tensor::ones({4}, t);
    EXPECT_EQ(o.at({3}), 1.0);
    Tensor zz = Tensor::zeros({5}, t);
    EXPECT_EQ(zz.at({4}), 0.0);
  }
  Tensor s = Tensor::scalar(2.5, DType::Float64);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.item(), 2.5);

  Tensor a = Tensor::arange(5, DType::Int64);
  EXPECT_EQ(a.to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3, 4}));

  Tensor v = Tensor::from_vector<double>({1.5, -2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(v.dtype(), DType::Float64);
  EXPECT_EQ(v.at({1, 0}), 4.0);
  EXPECT_EQ(v.at({0, 1}), -2.0);
  EXPECT_THAT(error_of([] { Tensor::from_vector({1.f, 2.f, 3.f}, {2, 2}); }), HasSubstr("[2, 2]"));

  Tensor e = Tensor::empty({0, 3});
  EXPECT_EQ(e.numel(), 0);
  EXPECT_TRUE(e.to_vector<float>().empty());
  EXPECT_EQ(Tensor::zeros({2, 3}).str(), "float32[2, 3] cpu");
}

TEST(Factories, FreshStorageIs64ByteAligned) {
  for (int64_t n : {1, 3, 17, 100, 4097})
    for (DType t : {DType::Float32, DType::Float64, DType::BFloat16, DType::Int64}) {
      Tensor x = Tensor::empty({n}, t);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(x.raw_data()) % 64, 0u) << n << " " << dtype_name(t);
    }
  // Results of ops and clones are fresh storage too.
  Tensor y = Tensor::ones({7, 5}).t().clone();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(y.raw_data()) % 64, 0u);
}

TEST(DTypes, BFloat16RoundTrip) {
  // Values with at most 8 significant bits survive float32 -> bf16 -> float32 exactly.
  std::vector<float> exact = {0.f, 1.f, -2.f, 0.5f, 3.f, 255.f, -1.0f / 1024, 1.5f * 65536, 0.75f};
  Tensor e = Tensor::from_vector(exact, {int64_t(exact.size())});
  EXPECT_EQ(e.to(DType::BFloat16).to(DType::Float32).to_vector<float>(), exact);

  // Others round to nearest even on the top 16 bits: compute the expected bits independently.
  Generator g(11);
  Tensor r = Tensor::uniform({1000}, -100, 100, g);
  Tensor back = r.to(DType::BFloat16).to(DType::Float32);
  std::vector<float> in = r.to_vector<float>(), out = back.to_vector<float>();
  for (size_t i = 0; i < in.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &in[i], 4);
    uint32_t lower = u & 0xffffu, upper = u & 0xffff0000u;
    uint32_t rounded = upper;
    if (lower > 0x8000u || (lower == 0x8000u && (upper & 0x10000u))) rounded += 0x10000u;
    float expect;
    std::memcpy(&expect, &rounded, 4);
    ASSERT_EQ(out[i], expect) << "element " << i << " value " << in[i];
    ASSERT_LE(std::abs(out[i] - in[i]), std::abs(in[i]) / 256.f);
  }
  // NaN stays NaN; infinities stay infinite.
  float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  auto special = Tensor::from_vector({nan, inf, -inf}, {3}).to(DType::BFloat16).to(DType::Float32).to_vector<float>();
  EXPECT_TRUE(std::isnan(special[0]));
  EXPECT_EQ(special[1], inf);
  EXPECT_EQ(special[2], -inf);
}

TEST(DTypes, ConversionsBetweenAllTypes) {
  Tensor x = Tensor::from_vector({-2.f, 0.f, 1.f, 3.f}, {2, 2});
  for (DType t : {DType::Float64, DType::Int64, DType::BFloat16, DType::Float32}) {
    Tensor y = x.to(t);
    EXPECT_EQ(y.dtype(), t);
    EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{-2, 0, 1, 3})) << dtype_name(t);
  }
  EXPECT_TRUE(x.to(DType::Float32).same(x));  // same dtype: no copy
  EXPECT_THAT(error_of([&] { x.data<double>(); }), HasSubstr("float32"));
}

TEST(Views, ViewAndReshapeShareStorage) {
  Tensor x = iota({2, 3, 4});
  Tensor v = x.view({6, 4});
  EXPECT_EQ(v.raw_data(), x.raw_data());
  EXPECT_EQ(v.strides(), (Shape{4, 1}));
  EXPECT_EQ(v.at({5, 3}), 23.0);
  Tensor r = x.reshape({4, -1});
  EXPECT_EQ(r.shape(), (Shape{4, 6}));
  EXPECT_EQ(r.raw_data(), x.raw_data());
  // Writes through a view are visible in the base.
  v.select(0, 1).fill_(-1);
  EXPECT_EQ(x.at({0, 1, 0}), -1.0);
  EXPECT_EQ(x.at({0, 1, 3}), -1.0);
  EXPECT_EQ(x.at({0, 2, 0}), 8.0);

  // reshape of a non-contiguous tensor copies (and gives the values in logical order).
  Tensor t = iota({3, 4}).t();
  EXPECT_FALSE(t.is_contiguous());
  Tensor tr = t.reshape({12});
  EXPECT_NE(tr.raw_data(), t.raw_data());
  std::vector<float> expect;
  for (int j = 0; j < 4; ++j)
    for (int i = 0; i < 3; ++i) expect.push_back(float(i * 4 + j));
  EXPECT_EQ(tr.to_vector<float>(), expect);
  EXPECT_THAT(error_of([&] { t.view({12}); }), HasSubstr("not contiguous"));
  EXPECT_THAT(error_of([&] { x.view({5, 5}); }), HasSubstr("[5, 5]"));
  EXPECT_THAT(error_of([&] { x.view({-1, -1}); }), HasSubstr("-1"));
  EXPECT_THAT(error_of([&] { x.reshape({7, -1}); }), HasSubstr("[2, 3, 4]"));
}

TEST(Views, PermuteAndTranspose) {
  Tensor x = iota({2, 3, 4});
  Tensor p = x.permute({2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(p.strides(), (Shape{1, 12, 4}));
  EXPECT_EQ(p.raw_data(), x.raw_data());
  for (int64_t a = 0; a < 4; ++a)
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(p.at({a, b, c}), double(b * 12 + c * 4 + a));
  Tensor t = x.transpose(0, -1);
  EXPECT_EQ(t.shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(t.at({3, 1, 1}), 1 * 12 + 1 * 4 + 3.0);
  EXPECT_THAT(error_of([&] { x.permute({0, 0, 1}); }), HasSubstr("repeated"));
  EXPECT_THAT(error_of([&] { x.permute({0, 1}); }), HasSubstr("[2, 3, 4]"));
  EXPECT_THAT(error_of([&] { x.transpose(0, 3); }), HasSubstr("out of range"));
}

TEST(Views, SliceAndSelect) {
  Tensor x = iota({5, 6});
  Tensor s = x.slice(1, 1, 6, 2);  // columns 1, 3, 5
  EXPECT_EQ(s.shape(), (Shape{5, 3}));
  EXPECT_EQ(s.strides(), (Shape{6, 2}));
  EXPECT_EQ(s.raw_data(), element_address(x, {0, 1}));
  for (int64_t i = 0; i < 5; ++i)
    for (int64_t j = 0; j < 3; ++j) EXPECT_EQ(s.at({i, j}), double(i * 6 + 1 + 2 * j));
  Tensor neg = x.slice(0, -2, 5);  // rows 3, 4
  EXPECT_EQ(neg.shape(), (Shape{2, 6}));
  EXPECT_EQ(neg.at({0, 0}), 18.0);
  EXPECT_EQ(x.slice(0, 4, 2).numel(), 0);  // empty, not an error
  EXPECT_EQ(x.slice(0, 0, 100).shape(), (Shape{5, 6}));
  // Slice of a slice: offsets compose.
  Tensor ss = s.slice(0, 2, 4).slice(1, 1, 3);
  EXPECT_EQ(ss.at({1, 1}), double(3 * 6 + 1 + 2 * 2));
  EXPECT_EQ(ss.raw_data(), element_address(x, {2, 3}));

  Tensor row = x.select(0, 2);
  EXPECT_EQ(row.shape(), (Shape{6}));
  EXPECT_EQ(row.raw_data(), element_address(x, {2, 0}));
  Tensor col = x.select(1, -1);
  EXPECT_EQ(col.shape(), (Shape{5}));
  EXPECT_EQ(col.at({4}), 29.0);
  EXPECT_THAT(error_of([&] { x.select(0, 5); }), HasSubstr("out of range"));
  EXPECT_THAT(error_of([&] { x.slice(0, 0, 2, 0); }), HasSubstr("step"));
}

TEST(Views, ExpandUnsqueezeSqueezeFlatten) {
  Tensor x = iota({3, 1});
  Tensor e = x.expand({2, 3, 4});
  EXPECT_EQ(e.strides(), (Shape{0, 1, 0}));
  EXPECT_EQ(e.raw_data(), x.raw_data());
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t c = 0; c < 4; ++c) EXPECT_EQ(e.at({a, b, c}), double(b));
  EXPECT_THAT(error_of([&] { x.expand({2, 4}); }), HasSubstr("[3, 1]"));
  EXPECT_THAT(error_of([&] { x.expand({4}); }), HasSubstr("[4]"));
  // The contiguous copy of an expanded view materialises the repeats.
  Tensor ec = e.contiguous();
  EXPECT_NE(ec.raw_data(), e.raw_data());
  EXPECT_EQ(ec.at({1, 2, 3}), 2.0);

  Tensor y = iota({2, 3});
  Tensor u = y.unsqueeze(1);
  EXPECT_EQ(u.shape(), (Shape{2, 1, 3}));
  EXPECT_EQ(u.raw_data(), y.raw_data());
  EXPECT_TRUE(u.is_contiguous());
  EXPECT_EQ(y.unsqueeze(-1).shape(), (Shape{2, 3, 1}));
  EXPECT_EQ(y.unsqueeze(0).shape(), (Shape{1, 2, 3}));
  EXPECT_EQ(u.squeeze(1).shape(), (Shape{2, 3}));
  EXPECT_EQ(u.squeeze(0).shape(), (Shape{2, 1, 3}));  // size != 1: unchanged
  EXPECT_EQ(u.squeeze(1).raw_data(), y.raw_data());
  // unsqueeze of a transposed view keeps valid strides.
  Tensor tu = y.t().unsqueeze(1);
  EXPECT_EQ(tu.shape(), (Shape{3, 1, 2}));
  EXPECT_EQ(tu.at({2, 0, 1}), 5.0);

  Tensor z = iota({2, 3, 4, 5});
  EXPECT_EQ(z.flatten().shape(), (Shape{2, 60}));
  EXPECT_EQ(z.flatten(0, -1).shape(), (Shape{120}));
  EXPECT_EQ(z.flatten(1, 2).shape(), (Shape{2, 12, 5}));
  EXPECT_EQ(z.flatten(1, 2).raw_data(), z.raw_data());
  EXPECT_EQ(Tensor::scalar(3).flatten().shape(), (Shape{1}));
}

TEST(Views, ContiguousAndCloneDoNotAliasWhenNeeded) {
  Tensor x = iota({4, 5});
  EXPECT_TRUE(x.contiguous().same(x));
  Tensor c = x.clone();
  EXPECT_NE(c.raw_data(), x.raw_data());
  c.fill_(0);
  EXPECT_EQ(x.at({3, 4}), 19.0);
  Tensor t = x.t().contiguous();
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_EQ(t.at({4, 3}), 19.0);
  EXPECT_EQ(t.at({1, 2}), 11.0);
  // A size-1 dim with an odd stride does not break contiguity.
  EXPECT_TRUE(x.slice(0, 2, 3).is_contiguous());
  EXPECT_FALSE(x.slice(1, 0, 2).is_contiguous());
}

TEST(InPlace, CopyAcrossStridesAndDtypes) {
  Tensor src = iota({3, 4});
  // Into a transposed destination: dst[j, i] <- src.t()[j, i] = src[i, j].
  Tensor dst = Tensor::zeros({4, 3}, DType::Float64);
  dst.copy_(src.t());
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j) EXPECT_EQ(dst.at({j, i}), double(i * 4 + j));
  // Into a strided slice of a bigger buffer, leaving the gaps untouched.
  Tensor big = Tensor::full({3, 8}, -5, DType::Int64);
  big.slice(1, 0, 8, 2).copy_(src);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 8; ++j) EXPECT_EQ(big.at({i, j}), j % 2 ? -5.0 : double(i * 4 + j / 2));
  // From a broadcast (stride-0) view, into bf16.
  Tensor b = Tensor::zeros({2, 3}, DType::BFloat16);
  b.copy_(Tensor::from_vector({1.f, 2.f, 3.f}, {3}).expand({2, 3}));
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{1, 2, 3, 1, 2, 3}));
  EXPECT_THAT(error_of([&] { dst.copy_(src); }), HasSubstr("[3, 4]"));
}

TEST(InPlace, FillAddMul) {
  Tensor x = Tensor::zeros({3, 4}, DType::Float64);
  x.slice(1, 1, 3).fill_(2);
  EXPECT_EQ(x.to_vector<double>(), (std::vector<double>{0, 2, 2, 0, 0, 2, 2, 0, 0, 2, 2, 0}));
  Tensor y = Tensor::ones({4, 3}, DType::Float64);
  x.add_(y.t(), 0.5);  // strided other
  EXPECT_EQ(x.at({0, 0}), 0.5);
  EXPECT_EQ(x.at({2, 2}), 2.5);
  x.t().mul_(2);  // strided self
  EXPECT_EQ(x.at({1, 1}), 5.0);
  EXPECT_EQ(x.at({1, 3}), 1.0);
  EXPECT_THAT(error_of([&] { x.add_(Tensor::ones({3, 4})); }), HasSubstr("dtype"));
  EXPECT_THAT(error_of([&] { x.add_(Tensor::ones({4, 3}, DType::Float64)); }), HasSubstr("[4, 3]"));
}

TEST(Access, ItemAndAt) {
  Tensor x = iota({2, 3});
  EXPECT_EQ(x.select(0, 1).select(0, 2).item(), 5.0);
  EXPECT_THAT(error_of([&] { x.item(); }), HasSubstr("[2, 3]"));
  EXPECT_THAT(error_of([&] { x.at({2, 0}); }), HasSubstr("out of range"));
  EXPECT_THAT(error_of([&] { x.at({0}); }), HasSubstr("[2, 3]"));
  EXPECT_EQ(x.size(-1), 3);
  EXPECT_THAT(error_of([] { Tensor::zeros({2, -1}); }), HasSubstr("[2, -1]"));
  EXPECT_THAT(error_of([] { Tensor().shape(); }), HasSubstr("undefined"));
}

}  // namespace
