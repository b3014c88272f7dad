#include "nn/schedule.h"

#include <cmath>

#include "engine/error.h"
#include "nn/optim.h"

namespace ember {

void LRSchedule::apply(Optimizer& opt, int64_t t) const { opt.set_lr(lr(t)); }

StepSchedule::StepSchedule(double base_lr, int64_t step_size, double gamma)
    : base_lr_(base_lr), gamma_(gamma), step_size_(step_size) {
  EMBER_CHECK(step_size > 0, "StepSchedule: step_size ", step_size, " must be positive");
}
double StepSchedule::lr(int64_t t) const {
  EMBER_CHECK(t >= 0, "StepSchedule: negative step ", t);
  return base_lr_ * std::pow(gamma_, double(t / step_size_));
}

CosineSchedule::CosineSchedule(double base_lr, int64_t t_max, double eta_min)
    : base_lr_(base_lr), eta_min_(eta_min), t_max_(t_max) {
  EMBER_CHECK(t_max > 0, "CosineSchedule: T_max ", t_max, " must be positive");
}
double CosineSchedule::lr(int64_t t) const {
  EMBER_CHECK(t >= 0, "CosineSchedule: negative step ", t);
  return eta_min_ + (base_lr_ - eta_min_) * (1.0 + std::cos(M_PI * double(t) / double(t_max_))) / 2.0;
}

WarmupSchedule::WarmupSchedule(std::shared_ptr<const LRSchedule> after, int64_t warmup, double start_factor)
    : after_(std::move(after)), warmup_(warmup), start_factor_(start_factor) {
  EMBER_CHECK(after_ != nullptr, "WarmupSchedule: the wrapped schedule is null");
  EMBER_CHECK(warmup >= 0, "WarmupSchedule: warmup ", warmup, " must be >= 0");
  EMBER_CHECK(start_factor >= 0.0 && start_factor <= 1.0, "WarmupSchedule: start_factor ", start_factor,
              " must lie in [0, 1]");
}
double WarmupSchedule::lr(int64_t t) const {
  EMBER_CHECK(t >= 0, "WarmupSchedule: negative step ", t);
  if (t >= warmup_) return after_->lr(t - warmup_);
  return after_->lr(0) * (start_factor_ + (1.0 - start_factor_) * double(t) / double(warmup_));
}

}  // namespace ember
