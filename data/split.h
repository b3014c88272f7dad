// Train/val/test splits and k folds that are seeded, stratified by a target, grouped (all rows of a
// group — e.g. one HAM10000 lesion — land in one set) and duplicate-aware (rows sharing a dedupe
// key are grouped too). A split is written as a CSV of id,set and reused by later runs; loading it
// checks that its ids and the dataset's ids match one to one.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace ember::data {

struct SplitOptions {
  double train = 0.7, val = 0.1, test = 0.2;
  uint64_t seed = 0;
  std::string stratify_by{};  // target name; "" = config.stratify_by or the first classification target; "none"
  int regression_bins = 5;  // a regression target is stratified by quantile bins
};

struct Split {
  std::vector<int64_t> train, val, test;  // row indices into the Dataset, ascending
};

Split make_split(const Dataset& ds, const SplitOptions& options = {});
// fold[r] in 0..k-1 for every row, with the same grouping and stratification rules.
std::vector<int> make_folds(const Dataset& ds, int k, const SplitOptions& options = {});
// Rows of fold `fold` as validation, the rest as train (test empty).
Split fold_split(const std::vector<int>& folds, int fold);

// id,set CSV (set = train | val | test).
void save_split(const std::string& path, const Dataset& ds, const Split& split);
Split load_split(const std::string& path, const Dataset& ds);
// Loads `path` when it exists (after checking it against ds), else makes the split and writes it.
Split load_or_create_split(const std::string& path, const Dataset& ds, const SplitOptions& options = {});
// id,fold CSV.
void save_folds(const std::string& path, const Dataset& ds, const std::vector<int>& folds);
std::vector<int> load_folds(const std::string& path, const Dataset& ds);

// Throws naming the group when a group (or a dedupe key) has rows in two different sets.
void check_groups_disjoint(const Dataset& ds, const std::vector<int>& set_of_row);

}  // namespace ember::data
