#include "apps/driver/experiment.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/config.h"
#include "engine/error.h"

namespace ember::driver {
namespace fs = std::filesystem;
namespace {

// Reads known keys and rejects unknown ones, so a typo ("epoch": 5) is an error, not a silent default.
class Reader {
 public:
  Reader(const nlohmann::json& j, std::string where) : j_(j), where_(std::move(where)) {
    EMBER_CHECK(j.is_object(), where_, ": expected a JSON object");
  }
  template <class T>
  void get(const char* key, T& out) {
    seen_.push_back(key);
    if (!j_.contains(key)) return;
    try {
      out = j_.at(key).get<T>();
    } catch (const std::exception& e) {
      throw Error(detail::cat(where_, ".", key, ": ", e.what()));
    }
  }
  const nlohmann::json* sub(const char* key) {
    seen_.push_back(key);
    return j_.contains(key) ? &j_.at(key) : nullptr;
  }
  void finish() const {
    for (auto& [k, v] : j_.items()) {
      bool known = k.rfind("_", 0) == 0;  // "_comment" and friends
      for (auto& s : seen_) known = known || k == s;
      EMBER_CHECK(known, where_, ": unknown key '", k, "'");
    }
  }

 private:
  const nlohmann::json& j_;
  std::string where_;
  std::vector<std::string> seen_;
};

void read_train(const nlohmann::json& j, const std::string& where, TrainConfig& t) {
  Reader r(j, where);
  r.get("epochs", t.epochs);
  r.get("batch_size", t.batch_size);
  r.get("optimizer", t.optimizer);
  r.get("lr", t.lr);
  r.get("weight_decay", t.weight_decay);
  r.get("momentum", t.momentum);
  r.get("schedule", t.schedule);
  r.get("warmup_epochs", t.warmup_epochs);
  r.get("patience", t.patience);
  r.get("clip_norm", t.clip_norm);
  r.finish();
  EMBER_CHECK(t.epochs > 0 && t.batch_size > 0 && t.lr > 0, where, ": epochs, batch_size and lr must be positive");
  EMBER_CHECK(t.optimizer == "sgd" || t.optimizer == "adam" || t.optimizer == "adamw", where, ": optimizer '",
              t.optimizer, "' is not one of sgd, adam, adamw");
  EMBER_CHECK(t.schedule == "none" || t.schedule == "cosine" || t.schedule == "step", where, ": schedule '", t.schedule,
              "' is not one of none, cosine, step");
}

void read_milestone(const nlohmann::json& j, const std::string& where, MilestoneConfig& m) {
  Reader r(j, where);
  r.get("enabled", m.enabled);
  if (auto* t = r.sub("train")) read_train(*t, where + ".train", m.train);
  r.get("hidden", m.hidden);
  r.get("dropout", m.dropout);
  r.get("channels", m.channels);
  r.get("convs_per_block", m.convs_per_block);
  r.get("augment", m.augment);
  r.get("test_flip", m.test_flip);
  r.get("multitask", m.multitask);
  r.get("unitask", m.unitask);
  r.get("backbone", m.backbone);
  r.get("weights", m.weights);
  r.get("image_size", m.image_size);
  r.get("normalization", m.normalization);
  r.get("embeddings_file", m.embeddings_file);
  r.get("finetune_epochs", m.finetune_epochs);
  r.get("finetune_blocks", m.finetune_blocks);
  r.get("finetune_lr_factor", m.finetune_lr_factor);
  r.get("common_width", m.common_width);
  r.finish();
  EMBER_CHECK(m.convs_per_block >= 1 && m.convs_per_block <= 8, where, ": convs_per_block ", m.convs_per_block,
              " must be between 1 and 8");
  EMBER_CHECK(m.unitask || m.multitask.size() > 1, where, ": unitask false needs a multitask list of two or more targets");
  EMBER_CHECK(m.backbone == "m2" || m.backbone == "mobilenet_v1", where, ": backbone '", m.backbone,
              "' is not one of m2, mobilenet_v1");
}

}  // namespace

ExperimentConfig parse_experiment(const nlohmann::json& j, const std::string& source) {
  ExperimentConfig c;
  c.source_path = source;
  c.raw = j;
  const std::string where = source.empty() ? "experiment" : source;
  Reader r(j, where);
  r.get("name", c.name);
  r.get("dataset", c.dataset);
  r.get("dataset_root", c.dataset_root);
  if (auto* o = r.sub("dataset_overrides")) {
    EMBER_CHECK(o->is_object(), where, ".dataset_overrides: expected a JSON object (a merge patch)");
    c.dataset_overrides = *o;
  }
  r.get("synthetic_rows", c.synthetic_rows);
  r.get("synthetic_image_size", c.synthetic_image_size);
  r.get("seed", c.seed);
  if (auto* s = r.sub("split")) {
    Reader sr(*s, where + ".split");
    sr.get("train", c.train_fraction);
    sr.get("val", c.val_fraction);
    sr.get("test", c.test_fraction);
    sr.get("file", c.split_file);
    sr.finish();
  }
  r.get("targets", c.targets);
  r.get("image_size", c.image_size);
  r.get("cache_size", c.cache_size);
  r.get("normalization", c.normalization);
  r.get("cache_file", c.cache_file);
  r.get("subgroups", c.subgroup_columns);
  r.get("age_column", c.age_column);
  r.get("regression_loss", c.regression_loss);
  r.get("workers", c.workers);
  r.get("device", c.device);
  check_device_name(c.device, where + ".device");
  c.m2.train.epochs = 15;
  c.m2.train.lr = 2e-3;
  c.m3.hidden = {64};
  for (auto [key, m] : {std::pair{"m1", &c.m1}, {"m2", &c.m2}, {"m3", &c.m3}, {"m4", &c.m4}})
    if (auto* mj = r.sub(key)) read_milestone(*mj, where + "." + key, *m);
  r.finish();
  EMBER_CHECK(!c.dataset.empty(), where, ": 'dataset' is required (a dataset config path, or \"synthetic\")");
  EMBER_CHECK(c.regression_loss == "mse" || c.regression_loss == "l1" || c.regression_loss == "smooth_l1", where,
              ": regression_loss '", c.regression_loss, "' is not one of mse, l1, smooth_l1");
  EMBER_CHECK(c.image_size >= 8, where, ": image_size ", c.image_size, " is too small");
  double total = c.train_fraction + c.val_fraction + c.test_fraction;
  EMBER_CHECK(std::abs(total - 1.0) < 1e-6 && c.val_fraction > 0 && c.test_fraction > 0, where,
              ": split fractions must be positive and sum to 1 (got ", total, ")");
  // A config downloaded from anywhere must not make the driver write outside its project. The run
  // directory is runs/<name>, so the name is one plain path component; the files the driver creates
  // (cache_file, split.file, embeddings_file) must resolve under the experiment file's parent folder
  // (the repository for experiments/*.json, so "../runs/cache/x" stays allowed).
  EMBER_CHECK(!c.name.empty() && c.name.find_first_of("/\\") == std::string::npos && c.name != "." && c.name != "..",
              where, ": name '", c.name, "' must be a plain directory name (the run goes to runs/<name>)");
  if (!source.empty()) {
    const fs::path experiment_dir = fs::absolute(fs::path(source)).parent_path();
    const std::string root = experiment_dir.parent_path().string();
    auto inside = [&](const std::string& path, const std::string& what) {
      if (!path.empty()) data::resolve_inside(root, (experiment_dir / path).lexically_normal().string(), where + ": " + what);
    };
    inside(c.cache_file, "cache_file");
    inside(c.split_file, "split.file");
    for (auto [key, m] : {std::pair{"m1", &c.m1}, {"m2", &c.m2}, {"m3", &c.m3}, {"m4", &c.m4}})
      inside(m->embeddings_file, std::string(key) + ".embeddings_file");
  }
  return c;
}

void check_device_name(const std::string& device, const std::string& where) {
  EMBER_CHECK(device == "cpu" || device == "cuda", where, ": '", device, "' is not one of cpu, cuda");
}

ExperimentConfig load_experiment(const std::string& path) {
  std::ifstream f(path);
  EMBER_CHECK(f.good(), "experiment: cannot open '", path, "'");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const std::exception& e) {
    throw Error(detail::cat("experiment: '", path, "' is not valid JSON: ", e.what()));
  }
  return parse_experiment(j, fs::absolute(path).lexically_normal().string());
}

std::string resolve_config_path(const ExperimentConfig& cfg, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute() || cfg.source_path.empty()) return path;
  return (fs::path(cfg.source_path).parent_path() / path).lexically_normal().string();
}

const char* default_experiment_json() {
  return R"json({
  "name": "synthetic",
  "_comment": "ember's own multimodal dataset: the label depends on the image (shape) and the table (marker)",
  "dataset": "synthetic",
  "synthetic_rows": 600,
  "synthetic_image_size": 32,
  "seed": 1,
  "targets": ["label", "age"],
  "image_size": 32,
  "subgroups": ["sex", "site"],
  "age_column": "age",
  "m1": {"hidden": [32, 16], "dropout": 0.1, "train": {"epochs": 40, "batch_size": 32, "lr": 0.003}},
  "m2": {"channels": [16, 32, 64], "augment": true, "multitask": ["label", "age"],
         "train": {"epochs": 15, "batch_size": 32, "lr": 0.003}},
  "m3": {"backbone": "m2", "hidden": [32], "train": {"epochs": 40, "batch_size": 32, "lr": 0.003}},
  "m4": {"common_width": 16, "hidden": [32], "train": {"epochs": 40, "batch_size": 32, "lr": 0.003}}
})json";
}

}  // namespace ember::driver
