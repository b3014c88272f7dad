// One experiment run: everything the milestones share (dataset, the one split, the preprocessor
// fitted on train rows, heads, image pipeline and cache) and what they pass on to each other
// (the M2 trunk for M3's "m2" backbone, the embeddings for M3/M4, test predictions for late fusion).
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "apps/driver/evaluate.h"
#include "apps/driver/experiment.h"
#include "apps/driver/report.h"
#include "apps/driver/trainer.h"
#include "data/dataset.h"
#include "data/image_cache.h"
#include "data/preprocess.h"
#include "data/split.h"

namespace ember::driver {

struct RunOptions {
  std::string out_dir;               // run directory ("" = runs/<name>)
  std::vector<std::string> only;     // milestones to run ("M1", "M3", ...); empty = all
  bool quiet = false;
};

struct RunContext {
  ExperimentConfig cfg;
  RunOptions options;
  std::string run_dir;
  data::Dataset ds;
  data::Split split;
  data::TabularPreprocessor pre;
  std::vector<HeadSpec> heads;  // one per experiment target
  SubgroupSpec groups;
  data::ImagePipeline pipeline;  // M2's image pipeline
  std::shared_ptr<data::ImageCache> cache;
  Report report;
  // Hand-offs between milestones.
  nn::ModulePtr m2_trunk;
  int64_t m2_width = 0;
  nn::ModulePtr m3_backbone;        // the frozen backbone behind the embeddings
  data::ImagePipeline m3_pipeline;  // its input pipeline (size, normalisation)
  Tensor embeddings;  // [ds.size(), D], rows of the split filled
  std::map<std::string, Predictions> test_predictions;  // "M1/label" -> predictions

  bool wants(const std::string& milestone) const;
  // cfg.device as a Device; "cuda" without a usable device throws, saying why.
  Device device() const;
  // What every milestone's fit() shares: name, run directory, seed and device.
  FitOptions fit_options(const std::string& name) const;
  // Records a trained head's test result in the report and writes its predictions CSV.
  void add_result(MilestoneResult r, const Predictions& pred, size_t head, const FitResult* fit, int64_t params);
};

// A head for a dataset target (regression targets standardised with the train rows' mean/std).
HeadSpec make_head(const RunContext& ctx, const std::string& target);
// <run_dir>/predictions/<id>_<target>.csv, with characters other than [A-Za-z0-9-] as '_': written
// by the run, read back by `ember eval`.
std::string predictions_path(const std::string& run_dir, const std::string& id, const std::string& target);

// Runs every milestone in order; returns the report (also written to the run directory).
Report run_experiment(const ExperimentConfig& cfg, const RunOptions& options);
// Prepares dataset, split, preprocessor and heads (also used by `ember embed`).
void prepare(RunContext& ctx);

void run_m1(RunContext& ctx);
void run_m2(RunContext& ctx);
void run_m3(RunContext& ctx);
void run_m4(RunContext& ctx);
// The frozen-backbone embeddings of every row in the split (cached in <run>/embeddings.safetensors).
Tensor compute_embeddings(RunContext& ctx);

}  // namespace ember::driver
