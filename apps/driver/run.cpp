#include "apps/driver/run.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "apps/driver/progress.h"
#include "data/synthetic.h"
#include "kernels/registry.h"

namespace ember::driver {
namespace fs = std::filesystem;

bool RunContext::wants(const std::string& m) const {
  if (options.only.empty()) return true;
  return std::find(options.only.begin(), options.only.end(), m) != options.only.end();
}

Device RunContext::device() const {
  if (cfg.device == "cpu") return Device::CPU;
  require_cuda("experiment device 'cuda'");
  return Device::CUDA;
}

FitOptions RunContext::fit_options(const std::string& name) const {
  FitOptions fo;
  fo.name = name;
  fo.run_dir = run_dir;
  fo.seed = cfg.seed;
  fo.device = device();
  return fo;
}

std::string predictions_path(const std::string& run_dir, const std::string& id, const std::string& target) {
  std::string safe = id + "_" + target;
  for (auto& c : safe)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') c = '_';
  return run_dir + "/predictions/" + safe + ".csv";
}

void RunContext::add_result(MilestoneResult r, const Predictions& pred, size_t h, const FitResult* fit, int64_t params) {
  if (fit) {
    r.history = fit->history;
    r.seconds = fit->seconds;
  }
  r.parameters = params;
  test_predictions[r.id + "/" + r.target] = pred;
  // Predictions CSV: what `ember eval` recomputes the metrics from.
  std::ofstream f(predictions_path(run_dir, r.id, r.target));
  const auto& p = pred.heads[h];
  const bool cls = r.task != "regression";
  f << "id,row," << (cls ? "true,pred" : "true,pred_value");
  if (cls && !p.probs.empty())
    for (size_t c = 0; c < p.probs[0].size(); ++c) f << ",p" << c;
  f << '\n';
  for (size_t i = 0; i < pred.rows.size(); ++i) {
    f << ds.ids[size_t(pred.rows[i])] << ',' << pred.rows[i] << ',';
    if (cls) {
      f << p.true_label[i] << ',' << p.label[i];
      for (double v : p.probs[i]) f << ',' << v;
    } else {
      f << p.true_value[i] << ',' << p.value[i];
    }
    f << '\n';
  }
  if (!Progress::global_quiet()) {
    const char* key = r.task == "regression" ? "mae" : r.task == "binary" ? "roc_auc" : "accuracy";
    std::fprintf(stderr, "== %s %s (%s): test %s %.4f, accuracy %s\n", r.id.c_str(), r.target.c_str(), r.title.c_str(),
                 key, r.test.value(key, NAN),
                 r.test.contains("accuracy") ? std::to_string(r.test["accuracy"].get<double>()).c_str() : "-");
  }
  report.results.push_back(std::move(r));
}

HeadSpec make_head(const RunContext& ctx, const std::string& name) {
  const auto& t = ctx.ds.config.target(name);
  HeadSpec h;
  h.target = t.name;
  h.task = t.task;
  h.classes = t.classes;
  h.regression_loss = ctx.cfg.regression_loss;
  if (!t.is_classification()) {
    const auto& col = ctx.ds.targets[size_t(ctx.ds.target_index(name))];
    const auto& rows = ctx.split.train;
    double s = 0, s2 = 0;
    for (auto r : rows) s += col[size_t(r)];
    h.mean = s / double(rows.size());
    for (auto r : rows) s2 += (col[size_t(r)] - h.mean) * (col[size_t(r)] - h.mean);
    h.std = std::max(std::sqrt(s2 / double(rows.size())), 1e-6);
  }
  return h;
}

void prepare(RunContext& ctx) {
  const auto& cfg = ctx.cfg;
  (void)ctx.device();  // a "cuda" run on a machine without one stops here, before any work
  ctx.run_dir = ctx.options.out_dir.empty() ? "runs/" + cfg.name : ctx.options.out_dir;
  fs::create_directories(ctx.run_dir + "/checkpoints");
  fs::create_directories(ctx.run_dir + "/predictions");
  fs::remove(ctx.run_dir + "/metrics.csv");
  std::ofstream(ctx.run_dir + "/experiment.json") << cfg.raw.dump(2) << '\n';

  if (cfg.dataset == "synthetic") {
    data::SyntheticOptions so;
    so.rows = cfg.synthetic_rows;
    so.image_size = cfg.synthetic_image_size;
    so.seed = cfg.seed;
    auto made = data::write_synthetic_dataset(ctx.run_dir + "/data", so);
    ctx.ds = data::load_dataset(made.config_path);
  } else if (cfg.dataset_overrides.is_object() && !cfg.dataset_overrides.empty()) {
    // The experiment adjusts the shared dataset config (e.g. which columns are features) without a
    // copy of it: merge-patch the JSON, then parse it as if it were the file.
    const std::string path = resolve_config_path(cfg, cfg.dataset);
    std::ifstream f(path);
    EMBER_CHECK(f.good(), "experiment: cannot open dataset config '", path, "'");
    nlohmann::json j = nlohmann::json::parse(f);
    j.merge_patch(cfg.dataset_overrides);
    ctx.ds = data::load_dataset(data::parse_dataset_config(j.dump(), fs::path(path).parent_path().string(),
                                                           cfg.dataset_root, path));
  } else {
    ctx.ds = data::load_dataset(resolve_config_path(cfg, cfg.dataset), cfg.dataset_root);
  }
  const auto& ds = ctx.ds;
  if (!Progress::global_quiet())
    std::fprintf(stderr, "dataset %s: %lld rows read, %lld kept (%lld duplicates dropped, %lld bad rows skipped)\n",
                 ds.config.name.c_str(), (long long)ds.rows_read, (long long)ds.size(), (long long)ds.dropped_duplicates,
                 (long long)ds.skipped_bad);

  data::SplitOptions so;
  so.train = cfg.train_fraction;
  so.val = cfg.val_fraction;
  so.test = cfg.test_fraction;
  so.seed = cfg.seed;
  const std::string split_path = cfg.split_file.empty() ? ctx.run_dir + "/split.csv" : resolve_config_path(cfg, cfg.split_file);
  ctx.split = data::load_or_create_split(split_path, ds, so);
  if (split_path != ctx.run_dir + "/split.csv") data::save_split(ctx.run_dir + "/split.csv", ds, ctx.split);

  ctx.pre.fit(ds, ctx.split.train);
  std::ofstream(ctx.run_dir + "/tabular_report.txt") << ctx.pre.report();

  std::vector<std::string> targets = cfg.targets;
  if (targets.empty()) targets.push_back(ds.config.targets.at(0).name);
  for (const auto& name : targets) ctx.heads.push_back(make_head(ctx, name));
  ctx.groups.columns = cfg.subgroup_columns;
  ctx.groups.age_column = cfg.age_column;

  ctx.pipeline.out_h = ctx.pipeline.out_w = cfg.image_size;
  ctx.pipeline.cache_h = ctx.pipeline.cache_w = cfg.cache_size > 0 ? cfg.cache_size : cfg.image_size;
  ctx.pipeline.normalization = data::parse_normalization(cfg.normalization);
  ctx.pipeline.random_crop = ctx.pipeline.cache_h > ctx.pipeline.out_h;
  if (ds.has_images())
    ctx.cache = data::ImageCache::for_dataset(ds, ctx.pipeline, resolve_config_path(cfg, cfg.cache_file));

  std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M", std::localtime(&now));
  ctx.report.title = "ember experiment: " + cfg.name;
  ctx.report.dataset = ds.config.name;
  ctx.report.split_file = split_path;
  ctx.report.info = {{"date", date},
                     {"seed", cfg.seed},
                     {"rows", ds.size()},
                     {"train", ctx.split.train.size()},
                     {"val", ctx.split.val.size()},
                     {"test", ctx.split.test.size()},
                     {"duplicates_dropped", ds.dropped_duplicates},
                     {"tabular_features", ctx.pre.num_features()},
                     {"threads", omp_get_max_threads()},
                     {"cpu_isa", kernels::isa_name(kernels::cpu_isa())}};
}

Report run_experiment(const ExperimentConfig& cfg, const RunOptions& options) {
  Progress::set_global_quiet(options.quiet);
  RunContext ctx;
  ctx.cfg = cfg;
  ctx.options = options;
  auto t0 = std::chrono::steady_clock::now();
  prepare(ctx);
  if (cfg.m1.enabled && ctx.wants("M1")) run_m1(ctx);
  if (cfg.m2.enabled && ctx.wants("M2")) run_m2(ctx);
  if (cfg.m3.enabled && ctx.wants("M3")) run_m3(ctx);
  if (cfg.m4.enabled && ctx.wants("M4")) run_m4(ctx);
  ctx.report.info["device"] = cfg.device;
  ctx.report.info["total_seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  write_report(ctx.report, ctx.run_dir);
  return ctx.report;
}

}  // namespace ember::driver
