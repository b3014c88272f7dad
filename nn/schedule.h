// Learning-rate schedules as pure functions of the epoch or step counter t (0-based): lr(t) is the
// rate to use for epoch/step t. Being stateless they need nothing in a checkpoint beyond t itself,
// and they agree with torch.optim.lr_scheduler's values after t calls of scheduler.step().
#pragma once
#include <cstdint>
#include <memory>

namespace ember {

class Optimizer;

class LRSchedule {
 public:
  virtual ~LRSchedule() = default;
  virtual double lr(int64_t t) const = 0;
  // Sets every parameter group of `opt` to lr(t).
  void apply(Optimizer& opt, int64_t t) const;
};

// base_lr * gamma^floor(t / step_size)   (torch StepLR)
class StepSchedule : public LRSchedule {
 public:
  StepSchedule(double base_lr, int64_t step_size, double gamma = 0.1);
  double lr(int64_t t) const override;

 private:
  double base_lr_, gamma_;
  int64_t step_size_;
};

// eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2   (torch CosineAnnealingLR; the
// closed form, which keeps following the cosine past T_max like PyTorch's recursive update)
class CosineSchedule : public LRSchedule {
 public:
  CosineSchedule(double base_lr, int64_t t_max, double eta_min = 0.0);
  double lr(int64_t t) const override;

 private:
  double base_lr_, eta_min_;
  int64_t t_max_;
};

// Linear warm-up over `warmup` steps, then `after` restarted at 0:
//   t < warmup:  after.lr(0) * (start_factor + (1 - start_factor) * t / warmup)
//   t >= warmup: after.lr(t - warmup)
// (torch SequentialLR([LinearLR(start_factor, 1.0, warmup), after], milestones=[warmup])).
class WarmupSchedule : public LRSchedule {
 public:
  WarmupSchedule(std::shared_ptr<const LRSchedule> after, int64_t warmup, double start_factor = 0.0);
  double lr(int64_t t) const override;

 private:
  std::shared_ptr<const LRSchedule> after_;
  int64_t warmup_;
  double start_factor_;
};

}  // namespace ember
