#include "apps/driver/commands.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "apps/driver/metrics.h"
#include "apps/driver/progress.h"
#include "apps/driver/run.h"
#include "engine/cpu_allocator.h"
#include "data/csv.h"

namespace ember::driver {
namespace {

ExperimentConfig experiment_of(const CommandArgs& a) {
  ExperimentConfig cfg = a.experiment.empty() || a.experiment == "default"
                             ? parse_experiment(nlohmann::json::parse(default_experiment_json()))
                             : load_experiment(a.experiment);
  if (!a.device.empty()) {
    check_device_name(a.device, "--device");
    cfg.device = a.device;
  }
  return cfg;
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path);
  EMBER_CHECK(f.good(), "cannot open '", path, "'");
  return nlohmann::json::parse(f);
}

}  // namespace

int cmd_run(const CommandArgs& a) {
  // A run trains for minutes to hours while the data loader's threads allocate batches beside the
  // step, so it keeps the block cache at slack 1 (up to twice the peak of live tensors) unless
  // EMBER_CPU_CACHE_SLACK says otherwise: the library default 0 holds memory to the live peak but
  // measured 70 vs 61 s per UTKFace multitask epoch (7,034 vs 71 cache misses per epoch).
  if (!std::getenv("EMBER_CPU_CACHE_SLACK")) cpu_allocator_set_slack(1.0);
  ExperimentConfig cfg = experiment_of(a);
  RunOptions o;
  o.out_dir = a.out_dir;
  o.quiet = a.quiet;
  for (auto m : a.milestones) {
    for (auto& c : m) c = char(std::toupper(static_cast<unsigned char>(c)));
    EMBER_CHECK(m == "M1" || m == "M2" || m == "M3" || m == "M4", "train: unknown milestone '", m, "' (M1..M4)");
    o.only.push_back(m);
  }
  Report rep = run_experiment(cfg, o);
  std::printf("%s", render_markdown(rep).c_str());
  std::printf("\nreport: %s/report.html\n", (o.out_dir.empty() ? "runs/" + cfg.name : o.out_dir).c_str());
  return 0;
}

int cmd_embed(const CommandArgs& a) {
  Progress::set_global_quiet(a.quiet);
  RunContext ctx;
  ctx.cfg = experiment_of(a);
  ctx.options.out_dir = a.out_dir;
  prepare(ctx);
  Tensor e = compute_embeddings(ctx);
  std::printf("embeddings %s written to %s/embeddings_%s.safetensors\n", shape_str(e.shape()).c_str(), ctx.run_dir.c_str(),
              ctx.cfg.m3.backbone.c_str());
  return 0;
}

// Recomputes each model's test metrics from predictions/<model>.csv (the same numbers the run
// reported, unless the file was edited) and prints them.
int cmd_eval(const CommandArgs& a) {
  auto results = read_json(a.run_dir + "/results.json");
  int checked = 0;
  for (const auto& r : results["results"]) {
    const std::string path = predictions_path(a.run_dir, r["id"].get<std::string>(), r["target"].get<std::string>());
    auto table = data::read_csv(path);
    const bool regression = r["task"] == "regression";
    nlohmann::json m;
    if (regression) {
      std::vector<double> yt, yp;
      for (const auto& row : table.rows) {
        yt.push_back(std::stod(row[2]));
        yp.push_back(std::stod(row[3]));
      }
      m = to_json(regression_metrics(yt, yp));
    } else {
      std::vector<int64_t> yt, yp;
      std::vector<std::vector<double>> probs;
      for (const auto& row : table.rows) {
        yt.push_back(std::stoll(row[2]));
        yp.push_back(std::stoll(row[3]));
        std::vector<double> p;
        for (size_t c = 4; c < row.size(); ++c) p.push_back(std::stod(row[c]));
        probs.push_back(p);
      }
      const int64_t C = probs.empty() ? 0 : int64_t(probs[0].size());
      m = to_json(classification_metrics(yt, yp, probs, C));
    }
    std::printf("%-14s %-10s n=%lld", r["id"].get<std::string>().c_str(), r["target"].get<std::string>().c_str(),
                (long long)m["n"].get<int64_t>());
    for (const char* k : {"accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "mae", "rmse", "r2"})
      if (m.contains(k)) std::printf("  %s %.4f", k, m[k].get<double>());
    std::printf("\n");
    ++checked;
  }
  EMBER_CHECK(checked > 0, "eval: no results in ", a.run_dir, "/results.json");
  return 0;
}

int cmd_report(const CommandArgs& a) {
  auto j = read_json(a.run_dir + "/results.json");
  Report rep;
  rep.title = j.value("title", "ember experiment");
  rep.dataset = j.value("dataset", "");
  rep.split_file = j.value("split_file", "");
  rep.info = j.value("info", nlohmann::json::object());
  for (const auto& r : j["results"]) {
    MilestoneResult m;
    m.id = r["id"];
    m.title = r["title"];
    m.target = r["target"];
    m.task = r["task"];
    m.primary_metric = r["primary_metric"];
    m.test = r["test"];
    m.subgroups = r["subgroups"].get<std::map<std::string, std::map<std::string, nlohmann::json>>>();
    m.seconds = r["seconds"];
    m.parameters = r["parameters"];
    if (m.test.contains("per_class"))
      for (const auto& c : m.test["per_class"]) m.class_names.push_back(c["class"]);
    for (const auto& e : r["history"])
      m.history.push_back({e["epoch"], e["train_loss"], e["val_loss"], e["train_metric"], e["val_metric"], e["seconds"]});
    rep.results.push_back(m);
  }
  write_report(rep, a.run_dir);
  std::printf("report: %s/report.html\n", a.run_dir.c_str());
  return 0;
}

}  // namespace ember::driver
