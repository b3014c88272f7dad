// Experiment configuration: which dataset, which split, and how each milestone is trained.
// A JSON file (schema in experiments/README.md); every field has a default, so the smallest
// config is {"dataset": "path/to/dataset.json"}. The embedded default (default_experiment_json)
// runs all milestones on ember's synthetic multimodal dataset.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ember::driver {

struct TrainConfig {
  int64_t epochs = 20;
  int64_t batch_size = 64;
  std::string optimizer = "adamw";  // sgd | adam | adamw
  double lr = 1e-3;
  double weight_decay = 1e-4;
  double momentum = 0.9;            // sgd
  std::string schedule = "cosine";  // none | cosine | step
  int64_t warmup_epochs = 0;
  int64_t patience = 5;             // early stopping on the validation metric; 0: off
  double clip_norm = 0;             // 0: no clipping
};

struct MilestoneConfig {
  bool enabled = true;
  TrainConfig train;
  std::vector<int64_t> hidden{64};  // MLP / head widths
  double dropout = 0.1;
  // M2 (CNN)
  std::vector<int64_t> channels{16, 32, 64};
  int64_t convs_per_block = 1;  // conv-BN-ReLU units per block before each 2x2 max pool
  bool augment = true;
  bool test_flip = false;  // test outputs averaged over each image and its mirror image
  std::vector<std::string> multitask;  // e.g. {"age", "gender"}: one CNN, one head per target
  bool unitask = true;                 // false: train only the multitask CNN, not one CNN per target
  // M3 (frozen backbone)
  std::string backbone = "m2";  // "mobilenet_v1" (weights below) | "m2" (the trained M2 trunk, frozen)
  std::string weights;          // safetensors path, relative to the experiment file
  int image_size = 0;           // backbone input size (0: the experiment's image_size)
  std::string normalization;    // "" | imagenet | minus_one_one | caffe
  std::string embeddings_file;  // pretrained backbones: embeddings reused across runs (relative to the experiment)
  int64_t finetune_epochs = 0;  // > 0: also fine-tune the last blocks with a lower learning rate
  int64_t finetune_blocks = 2;
  double finetune_lr_factor = 0.1;
  // M4 (fusion)
  int64_t common_width = 32;
};

struct ExperimentConfig {
  std::string name = "experiment";
  std::string source_path;  // the file it came from ("" for the embedded default)
  nlohmann::json raw;       // as given, copied into the run directory
  std::string dataset;      // dataset config path, or "synthetic"
  std::string dataset_root; // optional root override for the dataset config
  nlohmann::json dataset_overrides;  // JSON merge patch applied to the dataset config (e.g. features)
  int64_t synthetic_rows = 600;
  int synthetic_image_size = 32;
  uint64_t seed = 1;
  double train_fraction = 0.7, val_fraction = 0.1, test_fraction = 0.2;
  std::string split_file;   // reuse this split when given (else <run>/split.csv)
  std::vector<std::string> targets;  // targets to run milestones on (default: the first)
  std::string regression_loss = "mse";  // loss of regression heads on standardised targets: mse | l1 | smooth_l1
  int image_size = 32;
  int cache_size = 0;       // decoded image size kept in the cache (0: image_size)
  std::string normalization = "imagenet";
  std::string cache_file;   // on-disk image cache (large sets); "" keeps images in memory
  std::vector<std::string> subgroup_columns;  // e.g. {"sex", "race"}
  std::string age_column;   // numeric column broken down in age bands ("" = none)
  int workers = 2;
  // Where models train and the M3 backbone embeds: "cpu" or "cuda" (a CUDA build with a device; the
  // data pipeline, metrics and files stay on the CPU, and each batch is copied over).
  std::string device = "cpu";
  MilestoneConfig m1, m2, m3, m4;
};

ExperimentConfig parse_experiment(const nlohmann::json& j, const std::string& source_path = "");
ExperimentConfig load_experiment(const std::string& path);
const char* default_experiment_json();  // the README's main job
// "cpu" or "cuda" (anything else throws, naming `where`).
void check_device_name(const std::string& device, const std::string& where);
// Resolves a path from the config relative to the config file's directory.
std::string resolve_config_path(const ExperimentConfig& cfg, const std::string& path);

}  // namespace ember::driver
