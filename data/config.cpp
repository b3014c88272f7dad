#include "data/config.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/error.h"

namespace ember::data {
namespace fs = std::filesystem;
using nlohmann::json;

const char* task_name(Task t) {
  switch (t) {
    case Task::Binary: return "binary";
    case Task::Multiclass: return "multiclass";
    case Task::Regression: return "regression";
  }
  return "?";
}

Task parse_task(const std::string& s) {
  if (s == "binary") return Task::Binary;
  if (s == "multiclass") return Task::Multiclass;
  if (s == "regression") return Task::Regression;
  throw Error(detail::cat("unknown task '", s, "' (expected binary, multiclass or regression)"));
}

const TargetSpec& DatasetConfig::target(const std::string& n) const {
  for (const auto& t : targets)
    if (t.name == n) return t;
  throw Error(detail::cat("dataset '", name, "': no target named '", n, "'"));
}

bool DatasetConfig::is_missing(const std::string& v) const {
  return std::find(missing_values.begin(), missing_values.end(), v) != missing_values.end();
}

std::string resolve_inside(const std::string& root, const std::string& relative, const std::string& what) {
  const fs::path base = fs::path(root).lexically_normal();
  fs::path joined = fs::path(relative).is_absolute() ? fs::path(relative) : base / relative;
  joined = joined.lexically_normal();
  const fs::path rel = joined.lexically_relative(base);
  if (rel.empty() || *rel.begin() == "..")
    throw Error(detail::cat(what, " path '", relative, "' escapes its root '", base.string(), "'"));
  std::string out = joined.string();
  if (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

namespace {

std::vector<std::string> string_list(const json& j, const char* key, const std::string& source) {
  std::vector<std::string> out;
  if (!j.contains(key)) return out;
  if (!j[key].is_array()) throw Error(detail::cat(source, ": '", key, "' must be an array of strings"));
  for (const auto& v : j[key]) out.push_back(v.get<std::string>());
  return out;
}

std::string str_or(const json& j, const char* key, const std::string& fallback) {
  return j.contains(key) && !j[key].is_null() ? j[key].get<std::string>() : fallback;
}

}  // namespace

DatasetConfig parse_dataset_config(const std::string& json_text, const std::string& base_dir,
                                   const std::string& root_override, const std::string& source) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    throw Error(detail::cat(source, ": invalid JSON: ", e.what()));
  }
  DatasetConfig c;
  try {
    c.name = str_or(j, "name", fs::path(source).stem().string());
    const fs::path base = fs::absolute(base_dir.empty() ? fs::path(".") : fs::path(base_dir));
    const std::string root = root_override.empty() ? str_or(j, "root", ".") : root_override;
    c.root = (fs::path(root).is_absolute() ? fs::path(root) : base / root).lexically_normal().string();
    if (c.root.size() > 1 && c.root.back() == '/') c.root.pop_back();
    if (j.contains("csv")) c.csv = resolve_inside(c.root, j["csv"].get<std::string>(), "csv");
    if (j.contains("image_root")) c.image_root = resolve_inside(c.root, j["image_root"].get<std::string>(), "image_root");
    c.id_column = str_or(j, "id_column", "");
    c.image_column = str_or(j, "image_column", "");
    if (j.contains("filename_pattern")) {
      const json& p = j["filename_pattern"];
      c.filename_pattern = FilenamePattern(p.at("pattern").get<std::string>(), string_list(p, "suffixes", source));
      c.filename_column = str_or(p, "column", c.image_column);
    }
    c.numeric_features = string_list(j, "numeric_features", source);
    c.categorical_features = string_list(j, "categorical_features", source);
    c.drop_columns = string_list(j, "drop_columns", source);
    c.forbidden_columns = string_list(j, "forbidden_columns", source);
    if (j.contains("missing_values")) c.missing_values = string_list(j, "missing_values", source);
    for (const auto& t : j.value("targets", json::array())) {
      TargetSpec s;
      s.name = t.at("name").get<std::string>();
      s.column = str_or(t, "column", s.name);
      s.task = parse_task(t.at("task").get<std::string>());
      s.classes = string_list(t, "classes", source);
      if (s.task == Task::Binary && s.classes.empty()) s.classes = {"0", "1"};
      if (s.is_classification() && s.classes.size() < 2)
        throw Error(detail::cat(source, ": target '", s.name, "' needs at least two class names"));
      if (s.task == Task::Binary && s.classes.size() != 2)
        throw Error(detail::cat(source, ": binary target '", s.name, "' needs exactly two classes"));
      c.targets.push_back(std::move(s));
    }
    c.group_column = str_or(j, "group_column", "");
    c.stratify_by = str_or(j, "stratify_by", "");
    if (j.contains("duplicates")) {
      c.duplicates.drop_if_nonempty = str_or(j["duplicates"], "drop_if_nonempty", "");
      c.duplicates.dedupe_by = str_or(j["duplicates"], "dedupe_by", "");
    }
    c.skip_bad = j.value("skip_bad", false);
    c.max_pixels = j.value("max_pixels", c.max_pixels);
  } catch (const json::exception& e) {
    throw Error(detail::cat(source, ": bad dataset config: ", e.what()));
  } catch (const Error& e) {  // a bad task, a path escaping its root, ...: say which config
    throw Error(detail::cat(source, ": ", e.what()));
  }
  if (c.max_pixels <= 0) throw Error(detail::cat(source, ": max_pixels must be positive (got ", c.max_pixels, ")"));
  if (c.id_column.empty() && !c.image_column.empty()) c.id_column = c.image_column;
  if (c.csv.empty() && c.filename_pattern.empty())
    throw Error(detail::cat(source, ": a dataset needs a 'csv' table or a 'filename_pattern' to label images"));
  if (c.csv.empty() && c.image_root.empty())
    throw Error(detail::cat(source, ": a dataset without 'csv' needs 'image_root' to list the images"));
  if (c.targets.empty()) throw Error(detail::cat(source, ": no 'targets' given"));
  // A forbidden (leaking) column may never be a feature, a target or the group.
  for (const auto& f : c.forbidden_columns) {
    auto used = [&](const std::vector<std::string>& v) { return std::find(v.begin(), v.end(), f) != v.end(); };
    bool as_target = std::any_of(c.targets.begin(), c.targets.end(), [&](auto& t) { return t.column == f; });
    if (used(c.numeric_features) || used(c.categorical_features) || as_target)
      throw Error(detail::cat(source, ": column '", f, "' is listed in forbidden_columns (it leaks the label) ",
                              "but is also used as a feature or target"));
  }
  return c;
}

DatasetConfig load_dataset_config(const std::string& path, const std::string& root_override) {
  std::ifstream in(path);
  if (!in) throw Error(detail::cat("cannot open dataset config '", path, "'"));
  std::ostringstream ss;
  ss << in.rdbuf();
  DatasetConfig c = parse_dataset_config(ss.str(), fs::path(path).parent_path().string(), root_override, path);
  c.config_path = path;
  return c;
}

}  // namespace ember::data
