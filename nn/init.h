// Weight initialisers matching torch.nn.init, drawing from a seeded ember::Generator so a model
// built twice with the same seed has identical weights on any thread count.
// All fill in place without recording autograd history.
#pragma once
#include <cstdint>
#include <utility>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace ember::nn::init {

enum class FanMode { FanIn, FanOut };
enum class Nonlinearity { Linear, ReLU, LeakyReLU, Tanh, Sigmoid };

// (fan_in, fan_out) of a weight: dim 1 and dim 0 times the receptive field (kernel area), like
// torch.nn.init._calculate_fan_in_and_fan_out. Needs at least 2 dims.
std::pair<int64_t, int64_t> fan_in_out(const Tensor& w);
// torch.nn.init.calculate_gain; `param` is LeakyReLU's negative slope.
double gain(Nonlinearity nl, double param = 0.01);

void uniform_(Tensor& t, double lo, double hi, Generator& gen);
void normal_(Tensor& t, double mean, double std, Generator& gen);
void constant_(Tensor& t, double value);
// U(-b, b), b = gain * sqrt(3 / fan). PyTorch's Linear/Conv default is a = sqrt(5), LeakyReLU.
void kaiming_uniform_(Tensor& t, Generator& gen, double a = 0.0, FanMode mode = FanMode::FanIn,
                      Nonlinearity nl = Nonlinearity::LeakyReLU);
// N(0, std^2), std = gain / sqrt(fan).
void kaiming_normal_(Tensor& t, Generator& gen, double a = 0.0, FanMode mode = FanMode::FanIn,
                     Nonlinearity nl = Nonlinearity::LeakyReLU);
// U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_uniform_(Tensor& t, Generator& gen, double gain_value = 1.0);
// N(0, std^2), std = gain * sqrt(2 / (fan_in + fan_out)).
void xavier_normal_(Tensor& t, Generator& gen, double gain_value = 1.0);

// PyTorch's reset_parameters() for Linear and Conv2d: weight kaiming_uniform(a = sqrt(5)), which
// is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and bias (if defined) U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
void torch_default_(Tensor& weight, Tensor& bias, Generator& gen);

// While one of these lives (on this thread), torch_default_ does nothing: for models that
// overwrite every weight with their own scheme right after building the layers (VGG16's
// torchvision init), so 138M weights are drawn once, not twice. The weights are left
// uninitialised meanwhile: whoever holds the guard must initialise them all.
class DeferDefaultInit {
 public:
  DeferDefaultInit();
  ~DeferDefaultInit();
  DeferDefaultInit(const DeferDefaultInit&) = delete;
  DeferDefaultInit& operator=(const DeferDefaultInit&) = delete;

 private:
  bool previous_;
};

}  // namespace ember::nn::init
