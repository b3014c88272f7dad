// Bad arguments must throw ember::Error whose message names the op and every tensor involved
// (shape, dtype), so a user can tell from the message alone which call and which tensors are at fault.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "engine/ops.h"

namespace {

using namespace ember;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Runs f, which must throw ember::Error (not some other exception), and returns the message.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<wrong exception type: ") + e.what() + ">";
  }
  return "<no exception>";
}

Tensor f32(const Shape& s) { return Tensor::ones(s); }
Tensor f64(const Shape& s) { return Tensor::ones(s, DType::Float64); }

TEST(BadInput, AddShapeAndDtypeMismatch) {
  EXPECT_THAT(error_of([] { add(f32({2, 3}), f32({4})); }),
              AllOf(HasSubstr("add"), HasSubstr("[2, 3]"), HasSubstr("[4]")));
  EXPECT_THAT(error_of([] { mul(f32({2, 3, 4}), f32({4, 1})); }),
              AllOf(HasSubstr("mul"), HasSubstr("[2, 3, 4]"), HasSubstr("[4, 1]")));
  EXPECT_THAT(error_of([] { add(f32({2, 3}), f64({2, 3})); }),
              AllOf(HasSubstr("add"), HasSubstr("float32[2, 3]"), HasSubstr("float64[2, 3]")));
  EXPECT_THAT(error_of([] { div(f64({5}), f32({1})); }),
              AllOf(HasSubstr("div"), HasSubstr("float64[5]"), HasSubstr("float32[1]")));
  EXPECT_THAT(error_of([] { add(Tensor::ones({2}, DType::Int64), Tensor::ones({2}, DType::Int64)); }),
              AllOf(HasSubstr("add"), HasSubstr("int64[2]")));
  EXPECT_THAT(error_of([] { add(Tensor(), f32({2})); }), AllOf(HasSubstr("add"), HasSubstr("undefined")));
  EXPECT_THAT(error_of([] { f32({2, 3}) + f32({3, 2}); }), AllOf(HasSubstr("[2, 3]"), HasSubstr("[3, 2]")));
}

TEST(BadInput, MatmulShapeAndDtypeMismatch) {
  EXPECT_THAT(error_of([] { matmul(f32({2, 3}), f32({4, 5})); }),
              AllOf(HasSubstr("matmul"), HasSubstr("[2, 3]"), HasSubstr("[4, 5]")));
  EXPECT_THAT(error_of([] { matmul(f32({2, 3, 4}), f32({5, 4, 6})); }),
              AllOf(HasSubstr("matmul"), HasSubstr("[2, 3, 4]"), HasSubstr("[5, 4, 6]")));
  EXPECT_THAT(error_of([] { matmul(f32({3}), f32({3, 2})); }),
              AllOf(HasSubstr("matmul"), HasSubstr("[3]"), HasSubstr("[3, 2]")));
  EXPECT_THAT(error_of([] { matmul(f32({2, 3}), f64({3, 2})); }),
              AllOf(HasSubstr("matmul"), HasSubstr("float32[2, 3]"), HasSubstr("float64[3, 2]")));
}

TEST(BadInput, LinearShapeAndDtypeMismatch) {
  EXPECT_THAT(error_of([] { linear(f32({8, 3}), f32({4, 5})); }),
              AllOf(HasSubstr("linear"), HasSubstr("[8, 3]"), HasSubstr("[4, 5]")));
  EXPECT_THAT(error_of([] { linear(f32({8, 5}), f32({4, 5}), f32({3})); }),
              AllOf(HasSubstr("linear"), HasSubstr("[3]"), HasSubstr("[4, 5]")));
  EXPECT_THAT(error_of([] { linear(f32({8, 5}), f64({4, 5})); }),
              AllOf(HasSubstr("linear"), HasSubstr("float32[8, 5]"), HasSubstr("float64[4, 5]")));
  EXPECT_THAT(error_of([] { linear(f32({8, 5}), f32({4, 5}), f64({4})); }),
              AllOf(HasSubstr("linear"), HasSubstr("float32[8, 5]"), HasSubstr("float64[4]")));
  EXPECT_THAT(error_of([] { linear(f32({2, 8, 5}), f32({4, 5})); }),
              AllOf(HasSubstr("linear"), HasSubstr("[2, 8, 5]"), HasSubstr("[4, 5]")));
}

TEST(BadInput, Conv2dShapeAndDtypeMismatch) {
  const auto o = Conv2dOptions::make(1, 0);
  // Channel mismatch.
  EXPECT_THAT(error_of([&] { conv2d(f32({1, 2, 5, 5}), f32({4, 3, 3, 3}), Tensor(), o); }),
              AllOf(HasSubstr("conv2d"), HasSubstr("[1, 2, 5, 5]"), HasSubstr("[4, 3, 3, 3]")));
  // Groups that do not divide the channels.
  const auto groups3 = Conv2dOptions::make(1, 0, 1, 3);
  EXPECT_THAT(error_of([&] { conv2d(f32({1, 4, 5, 5}), f32({6, 1, 3, 3}), Tensor(), groups3); }),
              AllOf(HasSubstr("conv2d"), HasSubstr("groups"), HasSubstr("[1, 4, 5, 5]"), HasSubstr("[6, 1, 3, 3]")));
  // Input smaller than the (dilated) kernel.
  EXPECT_THAT(error_of([&] { conv2d(f32({1, 1, 4, 4}), f32({1, 1, 5, 5}), Tensor(), o); }),
              AllOf(HasSubstr("conv2d"), HasSubstr("[1, 1, 4, 4]"), HasSubstr("[1, 1, 5, 5]")));
  // Wrong rank, wrong bias, dtype mismatch, bad stride.
  EXPECT_THAT(error_of([&] { conv2d(f32({2, 5, 5}), f32({1, 2, 3, 3}), Tensor(), o); }),
              AllOf(HasSubstr("conv2d"), HasSubstr("[2, 5, 5]")));
  EXPECT_THAT(error_of([&] { conv2d(f32({1, 2, 5, 5}), f32({4, 2, 3, 3}), f32({3}), o); }),
              AllOf(HasSubstr("conv2d"), HasSubstr("[3]"), HasSubstr("[4, 2, 3, 3]")));
  EXPECT_THAT(error_of([&] { conv2d(f32({1, 2, 5, 5}), f64({4, 2, 3, 3}), Tensor(), o); }),
              AllOf(HasSubstr("conv2d"), HasSubstr("float32[1, 2, 5, 5]"), HasSubstr("float64[4, 2, 3, 3]")));
  EXPECT_THAT(error_of([&] { conv2d(f32({1, 2, 5, 5}), f32({4, 2, 3, 3}), Tensor(), Conv2dOptions::make(0, 0)); }),
              AllOf(HasSubstr("conv2d"), HasSubstr("stride")));
  EXPECT_THAT(error_of([] { pad2d(f32({2, 5}), 1, 1, 1, 1); }), AllOf(HasSubstr("pad2d"), HasSubstr("[2, 5]")));
}

TEST(BadInput, ConcatShapeAndDtypeMismatch) {
  EXPECT_THAT(error_of([] { concat({f32({2, 3}), f32({2, 4})}, 0); }),
              AllOf(HasSubstr("concat"), HasSubstr("[2, 3]"), HasSubstr("[2, 4]")));
  EXPECT_THAT(error_of([] { concat({f32({2, 3}), f32({2, 3, 1})}, 1); }),
              AllOf(HasSubstr("concat"), HasSubstr("[2, 3]"), HasSubstr("[2, 3, 1]")));
  EXPECT_THAT(error_of([] { concat({f32({2, 3}), f64({2, 3})}, 0); }),
              AllOf(HasSubstr("concat"), HasSubstr("float32[2, 3]"), HasSubstr("float64[2, 3]")));
  EXPECT_THAT(error_of([] { concat({}, 0); }), HasSubstr("concat"));
  EXPECT_THAT(error_of([] { concat({f32({2, 3})}, 2); }), AllOf(HasSubstr("concat"), HasSubstr("dim 2")));
}

TEST(BadInput, ReductionsAndViewsNameTheTensor) {
  EXPECT_THAT(error_of([] { sum(Tensor::ones({2, 3}, DType::Int64)); }),
              AllOf(HasSubstr("sum"), HasSubstr("int64[2, 3]")));
  EXPECT_THAT(error_of([] { sum(f32({2, 3}), {2}); }), AllOf(HasSubstr("sum"), HasSubstr("dim 2")));
  EXPECT_THAT(error_of([] { max(f32({2, 0}), 1); }), AllOf(HasSubstr("max"), HasSubstr("[2, 0]")));
  EXPECT_THAT(error_of([] { f32({2, 3}).view({4}); }), AllOf(HasSubstr("view"), HasSubstr("[4]"), HasSubstr("[2, 3]")));
}

TEST(BadInput, CudaTensorsCannotBeCreatedWithoutADevice) {
  // This machine has no GPU (and the test build has no CUDA backend): the error must say so, and
  // name what was being created.
  if (cuda_backend() != nullptr) GTEST_SKIP() << "a CUDA backend is installed";
  std::string msg = error_of([] { Tensor::empty({2, 3}, DType::Float32, Device::CUDA); });
  EXPECT_THAT(msg, AllOf(HasSubstr("CUDA is not available"), HasSubstr("[2, 3]")));
  EXPECT_THAT(error_of([] { Tensor::zeros({4}, DType::Float32, Device::CUDA); }), HasSubstr("CUDA"));
  EXPECT_THAT(error_of([] { f32({4}).to(Device::CUDA); }), HasSubstr("CUDA"));
}

}  // namespace
