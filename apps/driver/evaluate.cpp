#include "apps/driver/evaluate.h"

#include "apps/driver/metrics.h"

namespace ember::driver {

nlohmann::json head_metrics(const HeadSpec& head, const Predictions::Head& p, const std::vector<int64_t>& idx) {
  if (head.classification()) {
    std::vector<int64_t> yt, yp;
    std::vector<std::vector<double>> probs;
    for (auto i : idx) {
      yt.push_back(p.true_label[size_t(i)]);
      yp.push_back(p.label[size_t(i)]);
      probs.push_back(p.probs[size_t(i)]);
    }
    return to_json(classification_metrics(yt, yp, probs, int64_t(head.classes.size())), head.classes);
  }
  std::vector<double> yt, yp;
  for (auto i : idx) {
    yt.push_back(p.true_value[size_t(i)]);
    yp.push_back(p.value[size_t(i)]);
  }
  return to_json(regression_metrics(yt, yp));
}

MilestoneResult evaluate_head(const std::string& id, const std::string& title, const HeadSpec& head,
                              const Predictions& pred, size_t h, const data::Dataset& ds, const SubgroupSpec& groups) {
  MilestoneResult r;
  r.id = id;
  r.title = title;
  r.target = head.target;
  r.task = data::task_name(head.task);
  r.primary_metric = selection_metric(head);
  r.class_names = head.classes;
  const auto& p = pred.heads[h];
  std::vector<int64_t> all(pred.rows.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = int64_t(i);
  r.test = head_metrics(head, p, all);

  auto breakdown = [&](const std::string& by, const std::vector<std::string>& label_of_position) {
    for (auto& [group, idx] : group_rows(label_of_position)) r.subgroups[by][group] = head_metrics(head, p, idx);
  };
  if (head.classification()) {
    std::vector<std::string> labels;
    for (auto t : p.true_label) labels.push_back(head.classes[size_t(t)]);
    breakdown("class", labels);
  }
  if (!groups.age_column.empty() && ds.columns.count(groups.age_column)) {
    const auto& col = ds.columns.at(groups.age_column);
    std::vector<std::string> labels;
    for (auto row : pred.rows) {
      double age;
      labels.push_back(data::parse_number(col[size_t(row)], age) ? age_band(age) : "unknown");
    }
    breakdown("age_band", labels);
  }
  for (const auto& c : groups.columns) {
    if (!ds.columns.count(c)) continue;
    const auto& col = ds.columns.at(c);
    std::vector<std::string> labels;
    for (auto row : pred.rows) labels.push_back(col[size_t(row)].empty() ? "missing" : col[size_t(row)]);
    breakdown(c, labels);
  }
  return r;
}

}  // namespace ember::driver
