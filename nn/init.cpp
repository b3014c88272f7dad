#include "nn/init.h"

#include <cmath>

#include "engine/error.h"

namespace ember::nn::init {

std::pair<int64_t, int64_t> fan_in_out(const Tensor& w) {
  EMBER_CHECK(w.dim() >= 2, "nn::init: fan in/out needs a weight with >= 2 dims, got ", w.str());
  int64_t receptive = 1;
  for (int64_t d = 2; d < w.dim(); ++d) receptive *= w.shape()[d];
  return {w.shape()[1] * receptive, w.shape()[0] * receptive};
}

double gain(Nonlinearity nl, double param) {
  switch (nl) {
    case Nonlinearity::Linear:
    case Nonlinearity::Sigmoid: return 1.0;
    case Nonlinearity::ReLU: return std::sqrt(2.0);
    case Nonlinearity::LeakyReLU: return std::sqrt(2.0 / (1.0 + param * param));
    case Nonlinearity::Tanh: return 5.0 / 3.0;
  }
  return 1.0;
}

namespace {
// Generator fills need a contiguous tensor; parameters always are, but be safe for views.
template <class Fill>
void fill_via(Tensor& t, Fill fill) {
  if (t.is_contiguous()) {
    fill(t);
  } else {
    Tensor tmp = Tensor::empty(t.shape(), t.dtype());
    fill(tmp);
    t.copy_(tmp);
  }
}

double fan_for(const Tensor& t, FanMode mode) {
  auto [fan_in, fan_out] = fan_in_out(t);
  return double(mode == FanMode::FanIn ? fan_in : fan_out);
}
}  // namespace

void uniform_(Tensor& t, double lo, double hi, Generator& gen) {
  fill_via(t, [&](Tensor& x) { gen.fill_uniform(x, lo, hi); });
}
void normal_(Tensor& t, double mean, double std, Generator& gen) {
  fill_via(t, [&](Tensor& x) { gen.fill_normal(x, mean, std); });
}
void constant_(Tensor& t, double value) { t.fill_(value); }

void kaiming_uniform_(Tensor& t, Generator& gen, double a, FanMode mode, Nonlinearity nl) {
  const double bound = gain(nl, a) * std::sqrt(3.0 / fan_for(t, mode));
  uniform_(t, -bound, bound, gen);
}

void kaiming_normal_(Tensor& t, Generator& gen, double a, FanMode mode, Nonlinearity nl) {
  normal_(t, 0.0, gain(nl, a) / std::sqrt(fan_for(t, mode)), gen);
}

void xavier_uniform_(Tensor& t, Generator& gen, double gain_value) {
  auto [fan_in, fan_out] = fan_in_out(t);
  const double bound = gain_value * std::sqrt(6.0 / double(fan_in + fan_out));
  uniform_(t, -bound, bound, gen);
}

void xavier_normal_(Tensor& t, Generator& gen, double gain_value) {
  auto [fan_in, fan_out] = fan_in_out(t);
  normal_(t, 0.0, gain_value * std::sqrt(2.0 / double(fan_in + fan_out)), gen);
}

namespace {
thread_local bool g_defer_default_init = false;
}
DeferDefaultInit::DeferDefaultInit() : previous_(g_defer_default_init) { g_defer_default_init = true; }
DeferDefaultInit::~DeferDefaultInit() { g_defer_default_init = previous_; }

void torch_default_(Tensor& weight, Tensor& bias, Generator& gen) {
  if (g_defer_default_init) return;
  kaiming_uniform_(weight, gen, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(double(fan_in_out(weight).first));
    uniform_(bias, -bound, bound, gen);
  }
}

}  // namespace ember::nn::init
