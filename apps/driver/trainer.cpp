#include "apps/driver/trainer.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>

#include "apps/driver/metrics.h"
#include "apps/driver/progress.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"
#include "nn/schedule.h"

namespace ember::driver {
namespace {

std::unique_ptr<Optimizer> make_optimizer(const TrainConfig& cfg, std::vector<Tensor> params, double lr) {
  std::vector<ParamGroup> groups{{std::move(params), lr, cfg.weight_decay, "all"}};
  if (cfg.optimizer == "sgd") return std::make_unique<SGD>(groups, SGDOptions{cfg.momentum, 0.0, true});
  if (cfg.optimizer == "adam") return std::make_unique<Adam>(groups);
  return std::make_unique<AdamW>(groups);
}

std::shared_ptr<LRSchedule> make_schedule(const TrainConfig& cfg, double lr) {
  std::shared_ptr<LRSchedule> s;
  const int64_t main_epochs = std::max<int64_t>(cfg.epochs - cfg.warmup_epochs, 1);
  if (cfg.schedule == "cosine") s = std::make_shared<CosineSchedule>(lr, main_epochs, lr * 0.01);
  else if (cfg.schedule == "step") s = std::make_shared<StepSchedule>(lr, std::max<int64_t>(main_epochs / 3, 1), 0.1);
  else s = std::make_shared<StepSchedule>(lr, 1 << 30, 1.0);
  if (cfg.warmup_epochs > 0) s = std::make_shared<WarmupSchedule>(s, cfg.warmup_epochs, 0.1);
  return s;
}

bool all_finite(const Tensor& t) {
  if (!t.defined() || !is_floating(t.dtype())) return true;
  for (double v : t.to_vector<double>())
    if (!std::isfinite(v)) return false;
  return true;
}

// A quick screen for non-finite gradients, one number per step (a GPU run reads back one value instead
// of every gradient): the sum of all gradient elements is NaN or inf whenever one element is, so a
// finite sum proves them all finite. A sum can also overflow with every element finite, so false is
// only a reason to look element by element (fit() does), never an error by itself.
bool gradients_surely_finite(const std::vector<Tensor>& params) {
  Tensor total;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    const Tensor s = sum(g);
    total = total.defined() ? total + s : s;
  }
  return !total.defined() || std::isfinite(total.item());
}

// The batch's inputs and targets on `device` (the loaders produce CPU tensors); rows stay.
TrainBatch on_device(const TrainBatch& b, Device device) {
  if (device == Device::CPU) return b;
  TrainBatch d = b;
  for (Tensor& t : d.inputs) t = t.to(device);
  for (Tensor& t : d.targets) t = t.to(device);
  return d;
}

Device device_of(const nn::Module& model) {
  const auto params = model.parameters();
  return params.empty() ? Device::CPU : params.front().device();
}

// The loss of one batch: cross-entropy per classification head, the head's regression loss (MSE by
// default; L1 aims straight at MAE) on standardised values per regression head, summed.
Tensor regression_loss(const HeadSpec& head, const Tensor& out, const Tensor& target) {
  if (head.regression_loss == "l1") return l1_loss(out, target);
  if (head.regression_loss == "smooth_l1") return smooth_l1_loss(out, target);
  return mse_loss(out, target);
}

Tensor batch_loss(const std::vector<HeadSpec>& heads, const std::vector<Tensor>& outs, const TrainBatch& b) {
  Tensor total;
  for (size_t h = 0; h < heads.size(); ++h) {
    Tensor l = heads[h].classification() ? cross_entropy(outs[h], b.targets[h]) : regression_loss(heads[h], outs[h], b.targets[h]);
    total = total.defined() ? total + l : l;
  }
  return total;
}

[[noreturn]] void non_finite(const std::string& what, const FitOptions& opt, int64_t epoch, int64_t batch,
                             const std::string& detail) {
  throw Error(detail::cat("training ", opt.name, " stopped: ", what, " at epoch ", epoch + 1, ", batch ", batch + 1, " (",
                          detail, "); check the data for NaN/inf values or lower the learning rate"));
}

std::string first_bad_input(const TrainBatch& b) {
  for (size_t i = 0; i < b.inputs.size(); ++i)
    if (!all_finite(b.inputs[i])) return "input " + std::to_string(i) + " " + b.inputs[i].str() + " holds NaN/inf";
  for (size_t i = 0; i < b.targets.size(); ++i)
    if (!all_finite(b.targets[i])) return "target " + std::to_string(i) + " holds NaN/inf";
  return "inputs are finite";
}

// Appends head `h`'s outputs for a batch to `ph` (probabilities and labels, or de-standardised values).
void collect(const HeadSpec& head, const Tensor& out, const Tensor& target, Predictions::Head& ph) {
  if (head.classification()) {
    Tensor prob = softmax(out.detach(), 1);
    const int64_t C = prob.shape()[1], n = prob.shape()[0];
    auto v = prob.to_vector<double>();
    auto t = target.to_vector<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> row(v.begin() + i * C, v.begin() + (i + 1) * C);
      ph.label.push_back(int64_t(std::max_element(row.begin(), row.end()) - row.begin()));
      ph.probs.push_back(std::move(row));
      ph.true_label.push_back(t[size_t(i)]);
    }
  } else {
    auto v = out.detach().to_vector<double>();
    auto t = target.to_vector<double>();
    for (size_t i = 0; i < v.size(); ++i) {
      ph.value.push_back(v[i] * head.std + head.mean);
      ph.true_value.push_back(t[i] * head.std + head.mean);
    }
  }
}

// The batch mirrored left-right (NCHW float, CPU): the second view for flip test-time averaging.
Tensor mirrored(const Tensor& images) {
  Tensor x = images.contiguous();
  EMBER_CHECK(x.dim() == 4 && x.dtype() == DType::Float32, "flip averaging needs float NCHW images, got ", x.str());
  Tensor out = Tensor::empty(x.shape());
  const int64_t W = x.shape()[3], rows = x.numel() / std::max<int64_t>(W, 1);
  const float* src = x.data<float>();
  float* dst = out.data<float>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t w = 0; w < W; ++w) dst[r * W + w] = src[r * W + (W - 1 - w)];
  return out;
}

// The model's outputs for one batch (b on the CPU, d the same batch on the model's device); with flip
// averaging, the mean of the outputs (logits or standardised values) on the images and on their mirror images.
std::vector<Tensor> outputs(nn::Module& model, const TrainBatch& b, const TrainBatch& d, bool flip_average) {
  auto outs = model.call_many(d.inputs);
  if (!flip_average || b.inputs.empty() || b.inputs[0].dim() != 4) return outs;
  std::vector<Tensor> flipped_inputs = d.inputs;
  flipped_inputs[0] = mirrored(b.inputs[0]).to(d.inputs[0].device());
  auto flipped = model.call_many(flipped_inputs);
  for (size_t h = 0; h < outs.size(); ++h) outs[h] = (outs[h] + flipped[h]) * 0.5;
  return outs;
}

}  // namespace

std::string selection_metric(const HeadSpec& h) {
  return h.task == data::Task::Binary ? "roc_auc" : h.task == data::Task::Multiclass ? "accuracy" : "mae";
}

double selection_score(const HeadSpec& h, const Predictions::Head& p) {
  if (!h.classification()) return -regression_metrics(p.true_value, p.value).mae;
  auto m = classification_metrics(p.true_label, p.label, p.probs, int64_t(h.classes.size()));
  if (h.task == data::Task::Binary && m.roc_auc >= 0) return m.roc_auc;
  return m.accuracy;
}

Predictions predict(nn::Module& model, const std::vector<HeadSpec>& heads, BatchSource& src, const std::string& label,
                    bool flip_average) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  Predictions p;
  p.heads.resize(heads.size());
  src.start_epoch(0);
  TrainBatch b;
  double loss_sum = 0;
  const Device device = device_of(model);
  while (src.next(b)) {
    const TrainBatch d = on_device(b, device);
    auto outs = outputs(model, b, d, flip_average);
    loss_sum += batch_loss(heads, outs, d).item() * double(b.size());
    p.rows.insert(p.rows.end(), b.rows.begin(), b.rows.end());
    for (size_t h = 0; h < heads.size(); ++h) collect(heads[h], outs[h], b.targets[h], p.heads[h]);
  }
  p.loss = p.rows.empty() ? NAN : loss_sum / double(p.rows.size());
  model.train(was_training);
  return p;
}

FitResult fit(nn::Module& model, const std::vector<HeadSpec>& heads, BatchSource& train, BatchSource& val,
              const TrainConfig& cfg, const FitOptions& opt) {
  model.to(opt.device);  // before the parameters are listed: moving replaces the parameter tensors
  std::vector<Tensor> params = opt.params;
  std::vector<std::string> names(params.size());  // for messages: "features.0.weight"
  if (params.empty())
    for (auto& [name, p] : model.named_parameters())
      if (p.requires_grad()) params.push_back(p), names.push_back(name);
  EMBER_CHECK(!params.empty(), "training ", opt.name, ": the model has no trainable parameters");
  for (const Tensor& p : params)
    EMBER_CHECK(p.device() == opt.device, "training ", opt.name, ": parameter ", p.str(), " is not on ",
                device_name(opt.device), " (FitOptions::params must be listed after the model is moved there)");
  const double lr = cfg.lr * opt.lr_scale;
  auto optimizer = make_optimizer(cfg, params, lr);
  auto schedule = make_schedule(cfg, lr);

  FitResult result;
  result.best_val = -INFINITY;
  std::map<std::string, Tensor> best_state;
  int64_t since_best = 0;
  std::ofstream log;
  if (!opt.run_dir.empty()) {
    std::string path = opt.run_dir + "/metrics.csv";
    bool fresh = !std::ifstream(path).good();
    log.open(path, std::ios::app);
    if (fresh) log << "model,epoch,train_loss,val_loss,train_metric,val_metric,lr,seconds\n";
  }
  const std::string metric = selection_metric(heads[0]);
  for (int64_t epoch = 0; epoch < cfg.epochs; ++epoch) {
    schedule->apply(*optimizer, epoch);
    model.train();
    for (auto* m : opt.keep_eval) m->eval();
    train.start_epoch(epoch);
    Progress bar(opt.name + " epoch " + std::to_string(epoch + 1) + "/" + std::to_string(cfg.epochs), train.num_batches(),
                 false);
    TrainBatch b;
    double loss_sum = 0;
    int64_t seen = 0, batch = 0;
    Predictions::Head train_head0;  // running predictions of head 0 (Keras-style train metric)
    while (train.next(b)) {
      // Check the batch BEFORE the forward pass: an inf can vanish inside the model (Linear turns it
      // into -inf, ReLU into 0) and surface only as a NaN gradient, blamed on a parameter, not the data.
      if (std::string bad = first_bad_input(b); bad != "inputs are finite")
        non_finite("the batch is not finite", opt, epoch, batch, bad);
      const TrainBatch d = on_device(b, opt.device);
      auto outs = model.call_many(d.inputs);
      Tensor loss = batch_loss(heads, outs, d);
      const double lv = loss.item();
      if (!std::isfinite(lv)) non_finite("loss is " + std::to_string(lv), opt, epoch, batch, first_bad_input(b));
      optimizer->zero_grad();
      loss.backward();
      if (!gradients_surely_finite(params))
        for (size_t i = 0; i < params.size(); ++i)
          if (!all_finite(params[i].grad()))
            non_finite("gradient is not finite", opt, epoch, batch,
                       "first at parameter " + (names[i].empty() ? "" : names[i] + " ") + params[i].str());
      if (cfg.clip_norm > 0) clip_grad_norm_(params, cfg.clip_norm);
      optimizer->step();
      collect(heads[0], outs[0], b.targets[0], train_head0);
      loss_sum += lv * double(b.size());
      seen += b.size();
      bar.update(++batch, seen);
    }
    EpochLog e;
    e.epoch = epoch + 1;
    e.train_loss = seen ? loss_sum / double(seen) : NAN;
    Predictions vp = predict(model, heads, val, opt.name + " val");
    e.val_loss = vp.loss;
    double score = selection_score(heads[0], vp.heads[0]);
    e.val_metric = metric == "mae" ? -score : score;
    double train_score = selection_score(heads[0], train_head0);
    e.train_metric = metric == "mae" ? -train_score : train_score;
    char extra[160];
    std::snprintf(extra, sizeof extra, "train loss %.4f  val loss %.4f  val %s %.4f", e.train_loss, e.val_loss,
                  metric.c_str(), e.val_metric);
    e.seconds = bar.done(extra);
    if (log) log << opt.name << ',' << e.epoch << ',' << e.train_loss << ',' << e.val_loss << ',' << e.train_metric << ','
                 << e.val_metric << ',' << optimizer->lr() << ',' << e.seconds << '\n';
    result.seconds += e.seconds;
    result.history.push_back(e);
    if (score > result.best_val) {
      result.best_val = score;
      result.best_epoch = epoch + 1;
      since_best = 0;
      best_state.clear();
      for (auto& [k, v] : model.state_dict()) best_state[k] = v.detach().clone();
      if (!opt.run_dir.empty()) {
        Checkpoint ck;
        ck.model = best_state;
        ck.epoch = epoch + 1;
        ck.user["model"] = opt.name;
        ck.user["val_" + metric] = std::to_string(e.val_metric);
        std::string safe = opt.name;
        for (auto& ch : safe)
          if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
        result.checkpoint = opt.run_dir + "/checkpoints/" + safe + ".best.safetensors";
        save_checkpoint(result.checkpoint, ck);
      }
    } else if (cfg.patience > 0 && ++since_best >= cfg.patience) {
      if (!Progress::global_quiet())
        std::fprintf(stderr, "%s: early stop after epoch %lld (best epoch %lld)\n", opt.name.c_str(), (long long)(epoch + 1),
                     (long long)result.best_epoch);
      break;
    }
  }
  if (!best_state.empty()) model.load_state_dict(best_state, true);
  return result;
}

}  // namespace ember::driver
