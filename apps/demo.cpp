// `ember demo`: a tiny, self-contained training run (an MLP on a 2-class spiral) that shows the
// engine end to end: data -> forward -> loss -> backward -> SGD update. No files needed.
#include "apps/demo.h"

#include <cmath>
#include <cstdio>

#include "engine/ops.h"
#include "engine/rng.h"

namespace ember::apps {
namespace {

// Two interleaved spiral arms with a little noise: not linearly separable.
void make_spiral(int64_t n_per_class, Generator& gen, Tensor& x, Tensor& y) {
  const int64_t n = 2 * n_per_class;
  Tensor noise = Tensor::normal({n, 2}, 0.0, 0.05, gen);
  x = Tensor::empty({n, 2});
  y = Tensor::empty({n}, DType::Int64);
  float* px = x.data<float>();
  const float* pn = noise.data<float>();
  int64_t* py = y.data<int64_t>();
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t i = 0; i < n_per_class; ++i) {
      double r = double(i) / double(n_per_class), theta = 3.0 * M_PI * r + M_PI * double(c);
      int64_t k = c * n_per_class + i;
      px[2 * k] = float(r * std::cos(theta)) + pn[2 * k];
      px[2 * k + 1] = float(r * std::sin(theta)) + pn[2 * k + 1];
      py[k] = c;
    }
}

Tensor init_param(const Shape& shape, int64_t fan_in, Generator& gen) {
  double bound = 1.0 / std::sqrt(double(fan_in));  // PyTorch's default Linear init bound
  Tensor p = Tensor::uniform(shape, -bound, bound, gen);
  p.requires_grad_(true);
  return p;
}

}  // namespace

DemoResult run_demo(const DemoOptions& opt) {
  Generator gen(opt.seed);
  Tensor x, y;
  make_spiral(opt.points_per_class, gen, x, y);
  const int64_t h = opt.hidden;
  std::vector<Tensor> params = {init_param({h, 2}, 2, gen), init_param({h}, 2, gen), init_param({h, h}, h, gen),
                                init_param({h}, h, gen), init_param({2, h}, h, gen), init_param({2}, h, gen)};
  std::vector<Tensor> velocity;
  for (auto& p : params) velocity.push_back(Tensor::zeros(p.shape()));

  DemoResult result;
  for (int64_t step = 0; step < opt.steps; ++step) {
    Tensor hidden = relu(linear(relu(linear(x, params[0], params[1])), params[2], params[3]));
    Tensor logits = linear(hidden, params[4], params[5]);
    Tensor loss = cross_entropy(logits, y);
    for (auto& p : params) p.zero_grad();
    loss.backward();
    for (size_t i = 0; i < params.size(); ++i) {  // SGD with momentum 0.9
      velocity[i].mul_(0.9).add_(params[i].grad());
      params[i].add_(velocity[i], -opt.lr);
    }
    if (step % 100 == 0 || step + 1 == opt.steps) {
      NoGradGuard no_grad;
      auto pred = argmax(logits, 1).to_vector<int64_t>();
      auto truth = y.to_vector<int64_t>();
      int64_t correct = 0;
      for (size_t i = 0; i < pred.size(); ++i) correct += pred[i] == truth[i];
      result.loss = loss.item();
      result.accuracy = double(correct) / double(pred.size());
      if (!opt.quiet) std::printf("step %4lld  loss %.4f  accuracy %.3f\n", (long long)step, result.loss, result.accuracy);
    }
  }
  return result;
}

}  // namespace ember::apps
