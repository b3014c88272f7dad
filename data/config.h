// Dataset configuration: a JSON file (schema in data/README.md) that says where the table and the
// images are, which columns are features, targets, groups, duplicates and leaks. Paths are resolved
// relative to the config file; csv and image_root may not escape `root`, image paths may not escape
// image_root (a "../" that climbs out is refused).
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/filename_pattern.h"

namespace ember::data {

enum class Task { Binary, Multiclass, Regression };
const char* task_name(Task t);
Task parse_task(const std::string& s);  // "binary" | "multiclass" | "regression"

struct TargetSpec {
  std::string name;                  // name in batches and reports
  std::string column;                // CSV column or filename-pattern field (defaults to name)
  Task task = Task::Binary;
  std::vector<std::string> classes;  // class names; values may be a name or an index 0..n-1
  bool is_classification() const { return task != Task::Regression; }
  int64_t num_classes() const { return int64_t(classes.size()); }
};

struct DuplicateSpec {
  std::string drop_if_nonempty;  // drop rows whose column is non-empty (UTKFace `duplicate_of`)
  std::string dedupe_by;         // keep the first row of each value of this column (a hash)
};

struct DatasetConfig {
  std::string name;
  std::string config_path;  // where it was read from ("" when built in code)
  std::string root;         // absolute, normalised
  std::string csv;          // absolute; empty: list image_root and take labels from the file names
  std::string image_root;   // absolute; empty for a table-only dataset
  std::string id_column;
  std::string image_column;        // path relative to image_root
  FilenamePattern filename_pattern;
  std::string filename_column;     // column holding the name the pattern parses (default image_column)
  std::vector<std::string> numeric_features, categorical_features, drop_columns, forbidden_columns;
  std::vector<std::string> missing_values{"", "NA", "N/A", "NaN", "nan", "null"};
  std::vector<TargetSpec> targets;
  std::string group_column;
  std::string stratify_by;  // target name; default: the first classification target
  DuplicateSpec duplicates;
  bool skip_bad = false;
  int64_t max_pixels = 64LL * 1024 * 1024;  // refuse images larger than this before decoding

  const TargetSpec& target(const std::string& name) const;
  bool is_missing(const std::string& v) const;
};

// Reads a config. `root_override` (when non-empty) replaces the config's "root", so a user can point
// the shipped configs at their own copy of the data.
DatasetConfig load_dataset_config(const std::string& path, const std::string& root_override = "");
// Same from JSON text; relative paths resolve against `base_dir`.
DatasetConfig parse_dataset_config(const std::string& json_text, const std::string& base_dir,
                                   const std::string& root_override = "", const std::string& source = "<config>");

// Joins `relative` onto `root` and normalises it; throws when the result escapes `root`
// (what = "csv", "image_root", "image 'x.jpg'" for the message). Absolute paths are allowed only
// when they lie inside root.
std::string resolve_inside(const std::string& root, const std::string& relative, const std::string& what);

}  // namespace ember::data
