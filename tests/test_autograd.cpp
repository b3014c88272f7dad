// The autograd engine: leaves, accumulation, shared subexpressions, no_grad/detach, graph release,
// gradients through views and very deep graphs. Expected gradients are derived by hand from the
// formulas (d/dx of x*x + x is 2x + 1, ...), never read back from ember.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <pthread.h>

#include <cmath>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/ops.h"
#include "engine/rng.h"

namespace {

using namespace ember;
using ::testing::HasSubstr;

Tensor leaf(std::vector<double> values, const Shape& shape) {
  Tensor t = Tensor::from_vector(values, shape);
  t.requires_grad_(true);
  return t;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no ember::Error thrown>";
}

void expect_values(const Tensor& t, const std::vector<double>& want, double tol = 1e-12) {
  ASSERT_TRUE(t.defined());
  std::vector<double> got = t.to_vector<double>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "element " << i;
}

TEST(Autograd, RequiresGradPropagation) {
  Tensor a = Tensor::ones({2});
  EXPECT_FALSE(a.requires_grad());
  Tensor b = Tensor::ones({2}).requires_grad_();
  EXPECT_TRUE(b.is_leaf());
  Tensor c = a + b;
  EXPECT_TRUE(c.requires_grad());
  EXPECT_FALSE(c.is_leaf());
  ASSERT_TRUE(c.grad_fn());
  EXPECT_EQ(c.grad_fn()->op, "add");
  Tensor d = a * a;
  EXPECT_FALSE(d.requires_grad());
  EXPECT_FALSE(d.grad_fn());
  EXPECT_THAT(error_of([] { Tensor::ones({2}, DType::Int64).requires_grad_(); }), HasSubstr("int64"));
  EXPECT_THAT(error_of([&] { c.requires_grad_(false); }), HasSubstr("detach"));
  EXPECT_THAT(error_of([&] { d.backward(); }), HasSubstr("does not require grad"));
}

TEST(Autograd, AccumulatesAcrossBackwardCalls) {
  Tensor x = leaf({1, -2, 3}, {3});
  sum(x * x).backward();  // 2x
  expect_values(x.grad(), {2, -4, 6});
  sum(x * 3.0).backward();  // + 3
  expect_values(x.grad(), {5, -1, 9});
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  sum(x).backward();
  expect_values(x.grad(), {1, 1, 1});
}

TEST(Autograd, SharedSubexpressions) {
  Tensor x = leaf({0.5, -1.5, 2}, {3});
  Tensor y = x * x + x;  // dy/dx = 2x + 1
  sum(y).backward();
  expect_values(x.grad(), {2, -2, 5});

  // A diamond: h = 2z feeds two branches that meet again; L = sum(h*h + 3h) -> dL/dz = 2 (2h + 3) = 8z + 6.
  Tensor z = leaf({1, 2}, {2});
  Tensor h = z * 2.0;
  Tensor a = h * h, b = h * 3.0;
  sum(a + b).backward();
  expect_values(z.grad(), {14, 22});

  // x + x: add's backward hands the same gradient tensor to both inputs; they must not alias.
  Tensor w = leaf({1, 1}, {2});
  sum(w + w).backward();
  expect_values(w.grad(), {2, 2});
  sum(w + w).backward();
  expect_values(w.grad(), {4, 4});
}

TEST(Autograd, NoGradAndDetach) {
  Tensor x = leaf({1, 2}, {2});
  {
    NoGradGuard guard;
    EXPECT_FALSE(grad_enabled());
    Tensor y = x * x;
    EXPECT_FALSE(y.requires_grad());
    EXPECT_FALSE(y.grad_fn());
    {
      NoGradGuard nested;
    }
    EXPECT_FALSE(grad_enabled());  // the inner guard restores "off", not "on"
  }
  EXPECT_TRUE(grad_enabled());
  Tensor d = x.detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.raw_data(), x.raw_data());  // shares storage
  // Gradient stops at the detached branch: L = sum(x * detach(x)) -> dL/dx = detach(x) = x.
  sum(x * d).backward();
  expect_values(x.grad(), {1, 2});
}

TEST(Autograd, GraphIsFreedAfterBackward) {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor loss = sum(exp(x) * x);
  loss.backward();
  std::string msg = error_of([&] { loss.backward(); });
  EXPECT_THAT(msg, HasSubstr("already freed"));
  EXPECT_THAT(msg, HasSubstr("retain_graph"));

  // retain_graph keeps it: the second pass doubles the gradient; d/dx (x e^x) = (x + 1) e^x.
  Tensor x2 = leaf({0.5, -1}, {2});
  Tensor l2 = sum(exp(x2) * x2);
  l2.backward(Tensor(), /*retain_graph=*/true);
  l2.backward(Tensor(), /*retain_graph=*/true);
  std::vector<double> want;
  for (double v : {0.5, -1.0}) want.push_back(2 * (v + 1) * std::exp(v));
  expect_values(x2.grad(), want, 1e-12);

  // A new graph that reuses a freed intermediate must not silently lose its gradient.
  Tensor x3 = leaf({1, 2}, {2});
  Tensor mid = x3 * 2.0;
  sum(mid).backward();
  EXPECT_THAT(error_of([&] { sum(mid * 3.0).backward(); }), HasSubstr("freed"));
}

TEST(Autograd, NonScalarBackwardNeedsGradient) {
  Tensor x = leaf({1, 2, 3, 4}, {2, 2});
  Tensor y = x * 2.0;
  std::string msg = error_of([&] { y.backward(); });
  EXPECT_THAT(msg, HasSubstr("non-scalar"));
  EXPECT_THAT(msg, HasSubstr("[2, 2]"));
  EXPECT_THAT(error_of([&] { y.backward(Tensor::ones({4}, DType::Float64)); }), HasSubstr("[4]"));
  y.backward(Tensor::from_vector<double>({1, 0, -1, 2}, {2, 2}));
  expect_values(x.grad(), {2, 0, -2, 4});
}

TEST(Autograd, BackwardOnLeafAndScalarSeeds) {
  Tensor x = leaf({3}, {});
  x.backward();
  expect_values(x.grad(), {1});
  Tensor s = leaf({2, 5}, {2});
  sum(s * s).backward(Tensor::scalar(0.5, DType::Float64));
  expect_values(s.grad(), {2, 5});
}

TEST(Autograd, GradientsThroughViews) {
  // slice with a step: only the selected elements receive gradient.
  Tensor x = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  sum(x.slice(1, 0, 3, 2) * 2.0).backward();
  expect_values(x.grad(), {2, 0, 2, 2, 0, 2});

  // permute: the gradient comes back in the original layout. L = sum(p * W) with W[j, i] = 10j + i.
  Tensor y = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor w = Tensor::from_vector<double>({0, 1, 10, 11, 20, 21}, {3, 2});
  sum(y.permute({1, 0}) * w).backward();
  expect_values(y.grad(), {0, 10, 20, 1, 11, 21});

  // expand: the gradient of a broadcast is the sum over the copies.
  Tensor z = leaf({1, 2}, {2, 1});
  Tensor e = z.expand({3, 2, 4});
  sum(e * e).backward();  // d/dz sum over 12 copies of z^2 = 24 z
  expect_values(z.grad(), {24, 48});

  // select + view + unsqueeze/squeeze/flatten chained; L = sum(x[1, :] * [1, 2, 3]).
  Tensor v = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor r = v.view({6}).view({2, 3}).select(0, 1).unsqueeze(0).squeeze(0).flatten(0);
  sum(r * Tensor::from_vector<double>({1, 2, 3}, {3})).backward();
  expect_values(v.grad(), {0, 0, 0, 1, 2, 3});

  // Overlapping views of one leaf accumulate: rows 0..1 and 1..2 share row 1.
  Tensor q2 = leaf({1, 1, 1}, {3});
  sum(q2.slice(0, 0, 2) + q2.slice(0, 1, 3)).backward();
  expect_values(q2.grad(), {1, 2, 1});

  // A non-contiguous reshape (copy) is still differentiable.
  Tensor t = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor tr = t.t().reshape({6});
  sum(tr * Tensor::from_vector<double>({1, 2, 3, 4, 5, 6}, {6})).backward();
  // tr = [t00, t10, t01, t11, t02, t12] weighted 1..6.
  expect_values(t.grad(), {1, 3, 5, 2, 4, 6});
}

TEST(Autograd, GradientThroughDtypeCast) {
  Tensor x = leaf({1.5, -2}, {2});
  Tensor y = x.to(DType::Float32);
  sum(y * y).backward();
  EXPECT_EQ(x.grad().dtype(), DType::Float64);
  expect_values(x.grad(), {3, -4}, 1e-6);
}

TEST(Autograd, GraphAndSavedTensorsAreReleased) {
  Tensor x = leaf({0.1, 0.2, 0.3}, {3});
  // After backward (no retain_graph): the closures and saved tensors are dropped.
  Tensor y = exp(x);  // saves its output for the backward
  std::weak_ptr<Storage> y_storage = y.impl().storage;
  std::weak_ptr<Node> y_node = y.grad_fn();
  Tensor loss = sum(y * 2.0);
  y = Tensor();
  EXPECT_FALSE(y_storage.expired());  // still needed by the graph
  loss.backward();
  EXPECT_TRUE(y_node.expired());
  EXPECT_TRUE(y_storage.expired());
  // Without backward: dropping the result frees everything (no output -> node -> closure cycle).
  Tensor z = tanh(x) * sigmoid(x);
  std::weak_ptr<Node> z_node = z.grad_fn();
  std::weak_ptr<Storage> z_storage = z.impl().storage;
  z = Tensor();
  EXPECT_TRUE(z_node.expired());
  EXPECT_TRUE(z_storage.expired());
}

TEST(Autograd, GradModeIsThreadLocal) {
  NoGradGuard off_here;
  bool other_thread_enabled = false, other_thread_records = false;
  std::thread t([&] {
    other_thread_enabled = grad_enabled();
    Tensor a = leaf({1}, {1});
    other_thread_records = (a * 2.0).requires_grad();
  });
  t.join();
  EXPECT_TRUE(other_thread_enabled);
  EXPECT_TRUE(other_thread_records);
  EXPECT_FALSE(grad_enabled());
}

// Runs `body` on a thread with a small stack (256 KiB), so per-node recursion of a 10k-op graph
// would crash here even though it might fit into the main thread's 8 MiB.
void run_with_small_stack(void (*body)()) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_t thread;
  ASSERT_EQ(pthread_create(&thread, &attr, [](void* f) -> void* {
              reinterpret_cast<void (*)()>(f)();
              return nullptr;
            }, reinterpret_cast<void*>(body)), 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
}

// A chain of 10k ops must not recurse per node, neither in backward nor when the graph dies.
TEST(Autograd, DeepChainDoesNotOverflowTheStack) {
  static double grad_after_backward = 0, grad_after_retained = 0;
  run_with_small_stack([] {
    constexpr int kDepth = 10000;
    Tensor x = Tensor::from_vector<double>({1.0}, {1});
    x.requires_grad_(true);
    Tensor y = x;
    for (int i = 0; i < kDepth; ++i) y = y * 1.0 + 1.0;
    y.backward(Tensor::ones({1}, DType::Float64));
    grad_after_backward = x.grad().item();
    {  // dropping a graph that was never run
      Tensor z = x;
      for (int i = 0; i < kDepth; ++i) z = z * 1.0;
    }
    {  // dropping a graph kept alive by retain_graph
      Tensor z = x;
      for (int i = 0; i < kDepth; ++i) z = z - 0.5;
      x.zero_grad();
      sum(z).backward(Tensor(), /*retain_graph=*/true);
      grad_after_retained = x.grad().item();
    }
  });
  EXPECT_EQ(grad_after_backward, 1.0);
  EXPECT_EQ(grad_after_retained, 1.0);
}

}  // namespace
