#include "apps/driver/report.h"

#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include "apps/driver/svg.h"

namespace ember::driver {
namespace {

std::string num(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number()) return "–";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", j[key].get<double>());
  return buf;
}

// The columns of the comparison table: every metric some result reports.
std::vector<std::string> metric_columns(const Report& rep) {
  static const char* order[] = {"accuracy", "balanced_accuracy", "macro_f1", "roc_auc", "mae", "rmse", "r2"};
  std::vector<std::string> cols;
  for (const char* k : order)
    for (auto& r : rep.results)
      if (r.test.contains(k)) {
        cols.push_back(k);
        break;
      }
  return cols;
}

double metric_of(const nlohmann::json& j, const std::string& key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : NAN;
}

}  // namespace

nlohmann::json to_json(const MilestoneResult& r) {
  nlohmann::json hist = nlohmann::json::array();
  for (auto& e : r.history)
    hist.push_back({{"epoch", e.epoch}, {"train_loss", e.train_loss}, {"val_loss", e.val_loss},
                    {"train_metric", e.train_metric}, {"val_metric", e.val_metric}, {"seconds", e.seconds}});
  return {{"id", r.id},         {"title", r.title},   {"target", r.target},       {"task", r.task},
          {"primary_metric", r.primary_metric},       {"test", r.test},           {"subgroups", r.subgroups},
          {"history", hist},    {"seconds", r.seconds}, {"parameters", r.parameters}};
}

std::string render_html(const Report& rep) {
  std::ostringstream h;
  h << "<!DOCTYPE html><html><head><meta charset='utf-8'><title>" << svg::escape(rep.title) << "</title><style>"
    << "body{font-family:sans-serif;margin:24px;color:#222}table{border-collapse:collapse;margin:8px 0}"
    << "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}"
    << "td:nth-child(-n+3),th:nth-child(-n+3){text-align:left}.charts{display:flex;flex-wrap:wrap;gap:12px}"
    << "section{border-top:2px solid #ddd;margin-top:24px}</style></head><body>";
  h << "<h1>" << svg::escape(rep.title) << "</h1><p>Dataset: <b>" << svg::escape(rep.dataset) << "</b>. Split file: <code>"
    << svg::escape(rep.split_file) << "</code>. All models are evaluated on the same test rows.</p>";
  if (!rep.info.empty()) h << "<pre>" << svg::escape(rep.info.dump(2)) << "</pre>";

  auto cols = metric_columns(rep);
  h << "<h2>Comparison on the test set</h2><table id='comparison'><tr><th>milestone</th><th>model</th><th>target</th>";
  for (auto& c : cols) h << "<th>" << c << "</th>";
  h << "<th>params</th><th>time (s)</th></tr>";
  for (auto& r : rep.results) {
    h << "<tr><td>" << svg::escape(r.id) << "</td><td>" << svg::escape(r.title) << "</td><td>" << svg::escape(r.target) << "</td>";
    for (auto& c : cols) h << "<td>" << num(r.test, c.c_str()) << "</td>";
    h << "<td>" << r.parameters << "</td><td>" << std::to_string(int64_t(r.seconds + 0.5)) << "</td></tr>";
  }
  h << "</table>";

  for (auto& r : rep.results) {
    h << "<section><h2>" << svg::escape(r.id) << ": " << svg::escape(r.title) << " — " << svg::escape(r.target) << "</h2><div class='charts'>";
    if (!r.history.empty()) {
      svg::Series tl{"train loss", {}}, vl{"val loss", {}}, tm{"train " + r.primary_metric, {}},
          vm{"val " + r.primary_metric, {}};
      for (auto& e : r.history) {
        tl.values.push_back(e.train_loss);
        vl.values.push_back(e.val_loss);
        tm.values.push_back(e.train_metric);
        vm.values.push_back(e.val_metric);
      }
      h << svg::line_chart("loss", "epoch", {tl, vl}) << svg::line_chart(r.primary_metric, "epoch", {tm, vm});
    }
    if (r.test.contains("confusion"))
      h << svg::confusion_matrix("confusion matrix (test)", r.class_names,
                                 r.test["confusion"].get<std::vector<std::vector<int64_t>>>());
    for (auto& [by, groups] : r.subgroups) {
      std::vector<std::string> cats;
      std::vector<svg::Series> series;
      std::vector<std::string> keys = r.task == "regression" ? std::vector<std::string>{"mae"}
                                                             : std::vector<std::string>{"accuracy", "balanced_accuracy"};
      if (r.task == "binary") keys.push_back("roc_auc");
      for (auto& k : keys) series.push_back({k, {}});
      for (auto& [g, m] : groups) {
        cats.push_back(g + " (n=" + std::to_string(m.value("n", 0)) + ")");
        for (size_t k = 0; k < keys.size(); ++k) series[k].values.push_back(metric_of(m, keys[k]));
      }
      h << svg::bar_chart("by " + by, cats, series);
    }
    h << "</div><details><summary>metrics (JSON)</summary><pre>" << svg::escape(r.test.dump(2)) << "</pre></details></section>";
  }
  h << "</body></html>\n";
  return h.str();
}

std::string render_markdown(const Report& rep) {
  std::ostringstream m;
  m << "# " << rep.title << "\n\nDataset: " << rep.dataset << "; split: `" << rep.split_file << "`\n\n";
  auto cols = metric_columns(rep);
  m << "| milestone | model | target |";
  for (auto& c : cols) m << ' ' << c << " |";
  m << " params | time (s) |\n|---|---|---|";
  for (size_t i = 0; i < cols.size(); ++i) m << "---|";
  m << "---|---|\n";
  for (auto& r : rep.results) {
    m << "| " << r.id << " | " << r.title << " | " << r.target << " |";
    for (auto& c : cols) m << ' ' << num(r.test, c.c_str()) << " |";
    m << ' ' << r.parameters << " | " << int64_t(r.seconds + 0.5) << " |\n";
  }
  return m.str();
}

void write_report(const Report& rep, const std::string& dir) {
  for (auto [name, text] : {std::pair{"report.html", render_html(rep)}, std::pair{"summary.md", render_markdown(rep)}}) {
    std::string path = dir + "/" + name;
    std::ofstream f(path);
    if (!f) throw std::runtime_error("report: cannot write " + path);
    f << text;
  }
  nlohmann::json all = nlohmann::json::array();
  for (auto& r : rep.results) all.push_back(to_json(r));
  std::ofstream(dir + "/results.json") << nlohmann::json{{"title", rep.title}, {"dataset", rep.dataset},
                                                         {"split_file", rep.split_file}, {"info", rep.info}, {"results", all}}.dump(2);
}

}  // namespace ember::driver
