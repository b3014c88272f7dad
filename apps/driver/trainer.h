// The training loop shared by every milestone: epochs of (forward, loss, backward, optimizer step)
// over a BatchSource, validation after each epoch, early stopping and a best checkpoint on the
// validation metric, per-epoch logs, and a hard stop on a non-finite loss or gradient that names
// the epoch, the batch and the first tensor at fault.
#pragma once
#include <string>
#include <vector>

#include "apps/driver/experiment.h"
#include "apps/driver/report.h"
#include "apps/driver/sources.h"

namespace ember::driver {

struct FitOptions {
  std::string name;     // "M2 label", used in logs and messages
  std::string run_dir;  // where metrics.csv and checkpoints go ("" = nowhere)
  uint64_t seed = 1;
  std::vector<Tensor> params;  // parameters to train (default: the model's trainable ones)
  double lr_scale = 1.0;
  // Kept in eval mode while the rest trains (a frozen backbone's BatchNorm keeps its statistics).
  std::vector<nn::Module*> keep_eval;
  // fit() moves the model here first; each batch is copied over (the loaders and metrics stay on the CPU).
  Device device = Device::CPU;
};

struct FitResult {
  std::vector<EpochLog> history;
  int64_t best_epoch = 0;
  double best_val = 0;
  double seconds = 0;
  std::string checkpoint;  // path of the best checkpoint ("" when no run_dir)
};

// Per-head predictions on a source, in the source's row order.
struct Predictions {
  std::vector<int64_t> rows;
  struct Head {
    std::vector<std::vector<double>> probs;  // classification
    std::vector<int64_t> label;              // classification argmax
    std::vector<double> value;               // regression, de-standardised
    std::vector<int64_t> true_label;         // the batch targets, for metrics
    std::vector<double> true_value;          // de-standardised
  };
  std::vector<Head> heads;
  double loss = 0;  // mean loss over the source
};

FitResult fit(nn::Module& model, const std::vector<HeadSpec>& heads, BatchSource& train, BatchSource& val,
              const TrainConfig& cfg, const FitOptions& opt);
// Runs on the device of the model's parameters. flip_average: average the outputs on the images (input 0, NCHW) and on their mirror images, a
// test-time augmentation that matches training with random horizontal flips.
Predictions predict(nn::Module& model, const std::vector<HeadSpec>& heads, BatchSource& src, const std::string& label,
                    bool flip_average = false);

// Validation score of head 0, oriented so that higher is better (regression: -MAE).
double selection_score(const HeadSpec& head, const Predictions::Head& pred);
// Name of the metric behind selection_score ("roc_auc", "accuracy", "mae").
std::string selection_metric(const HeadSpec& head);

}  // namespace ember::driver
