// A dataset loaded from a DatasetConfig: one entry per kept row, with its id, image path, group,
// parsed numeric features (NaN = missing), raw categorical values and targets. Duplicate rows are
// dropped here (before any split); forbidden (leaking) and dropped columns are not kept at all, so
// no later stage can use them by mistake. Bad rows either throw (naming file, line and column) or,
// under skip_bad, are logged, counted and left out.
#pragma once
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/config.h"

namespace ember::data {

struct LoadOptions {
  bool check_images = true;  // stat + header check of every image (missing, zero-byte, corrupt, truncated)
  int max_logged = 20;       // how many skipped rows to print to stderr
};

class Dataset {
 public:
  DatasetConfig config;
  std::vector<std::string> ids;
  std::vector<std::string> image_paths;  // absolute; empty when the dataset has no images
  std::vector<int64_t> lines;            // 1-based CSV line of each row (0 for listed image files)
  std::vector<std::string> groups;       // group key: group_column value, else the id
  std::vector<std::string> dedupe_keys;  // dedupe_by value ("" when not configured)
  std::vector<std::vector<double>> numeric;           // [feature][row]; NaN when missing
  std::vector<std::vector<std::string>> categorical;  // [feature][row]; "" when missing
  std::vector<std::vector<double>> targets;           // [target][row]: class index or value
  std::map<std::string, std::vector<std::string>> columns;  // all kept raw columns (subgroup reports)

  int64_t rows_read = 0;           // rows in the table before dropping anything
  int64_t dropped_duplicates = 0;
  int64_t skipped_bad = 0;
  std::vector<std::string> bad_messages;  // one per skipped row

  int64_t size() const { return int64_t(ids.size()); }
  bool has_images() const { return !image_paths.empty(); }
  std::string table_path() const;  // csv path or image_root, for messages
  // Row index of an id; throws naming the id when absent.
  int64_t index_of(const std::string& id) const;
  // Raw values of a kept column (e.g. "sex" for subgroup reports); throws when absent or forbidden.
  const std::vector<std::string>& column(const std::string& name) const;
  // Class labels of a classification target as int64.
  std::vector<int64_t> class_labels(const std::string& target) const;
  int64_t target_index(const std::string& target) const;
  // "row <line> (id '...')" for messages.
  std::string where(int64_t row) const;

  void build_index();

 private:
  std::unordered_map<std::string, int64_t> index_;
};

Dataset load_dataset(const DatasetConfig& config, const LoadOptions& options = {});
Dataset load_dataset(const std::string& config_path, const std::string& root_override = "",
                     const LoadOptions& options = {});

// Parses a whole numeric string; false for text like "abc" or "12x".
bool parse_number(const std::string& s, double& out);

}  // namespace ember::data
