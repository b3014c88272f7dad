// Test-set evaluation: metrics of each head on all test rows, and broken down by true class, by
// age band and by each subgroup column (sex, race, site, ...), packed into a MilestoneResult.
#pragma once
#include <string>
#include <vector>

#include "apps/driver/report.h"
#include "apps/driver/trainer.h"

namespace ember::driver {

struct SubgroupSpec {
  std::vector<std::string> columns;  // categorical columns of the dataset
  std::string age_column;            // numeric column shown in age bands ("" = none)
};

// Metrics JSON for rows `idx` (positions into the prediction vectors) of one head.
nlohmann::json head_metrics(const HeadSpec& head, const Predictions::Head& p, const std::vector<int64_t>& idx);

MilestoneResult evaluate_head(const std::string& id, const std::string& title, const HeadSpec& head,
                              const Predictions& pred, size_t head_index, const data::Dataset& ds,
                              const SubgroupSpec& groups);

}  // namespace ember::driver
