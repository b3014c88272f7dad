// The run report: one self-contained HTML file (inline SVG, no scripts, no network) and a markdown
// summary, built from the results of every milestone on the same test set.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace ember::driver {

struct EpochLog {
  int64_t epoch = 0;
  double train_loss = 0, val_loss = 0;
  double train_metric = 0, val_metric = 0;  // the task's primary metric (accuracy / AUC / MAE)
  double seconds = 0;
};

// One model's result on one target.
struct MilestoneResult {
  std::string id;      // "M1", "M2-multitask", "M4-late", ...
  std::string title;   // "MLP on tabular features"
  std::string target;  // target column, e.g. "gender"
  std::string task;    // "binary" | "multiclass" | "regression"
  std::string primary_metric;  // name of the metric used for model selection, e.g. "roc_auc"
  std::vector<std::string> class_names;
  nlohmann::json test;  // metrics::to_json of the whole test set
  // Breakdowns: group_by ("class", "age_band", "sex", "race") -> group -> metrics json.
  std::map<std::string, std::map<std::string, nlohmann::json>> subgroups;
  std::vector<EpochLog> history;
  double seconds = 0;
  int64_t parameters = 0;
};

struct Report {
  std::string title;
  std::string dataset;
  std::string split_file;
  nlohmann::json info;  // machine, seed, sizes, ...
  std::vector<MilestoneResult> results;
};

nlohmann::json to_json(const MilestoneResult& r);
std::string render_html(const Report& report);
std::string render_markdown(const Report& report);
void write_report(const Report& report, const std::string& run_dir);  // report.html + summary.md

}  // namespace ember::driver
