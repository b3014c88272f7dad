#include "data/dataset.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>
#include <unordered_set>

#include "data/csv.h"
#include "data/image.h"
#include "engine/error.h"

namespace ember::data {
namespace fs = std::filesystem;

bool parse_number(const std::string& s, double& out) {
  if (s.empty()) return false;
  const char* begin = s.c_str();
  char* end = nullptr;
  out = std::strtod(begin, &end);
  while (end && *end == ' ') ++end;  // tolerate trailing blanks
  return end != begin && *end == '\0' && std::isfinite(out);
}

std::string Dataset::table_path() const { return config.csv.empty() ? config.image_root : config.csv; }

void Dataset::build_index() {
  index_.clear();
  for (int64_t i = 0; i < size(); ++i) index_[ids[i]] = i;
}

int64_t Dataset::index_of(const std::string& id) const {
  auto it = index_.find(id);
  if (it == index_.end()) throw Error(detail::cat(table_path(), ": no row with id '", id, "'"));
  return it->second;
}

const std::vector<std::string>& Dataset::column(const std::string& name) const {
  auto it = columns.find(name);
  if (it == columns.end())
    throw Error(detail::cat(table_path(), ": column '", name, "' is not available (absent, dropped or forbidden)"));
  return it->second;
}

int64_t Dataset::target_index(const std::string& target) const {
  for (size_t t = 0; t < config.targets.size(); ++t)
    if (config.targets[t].name == target) return int64_t(t);
  throw Error(detail::cat("dataset '", config.name, "': no target named '", target, "'"));
}

std::vector<int64_t> Dataset::class_labels(const std::string& target) const {
  const int64_t t = target_index(target);
  EMBER_CHECK(config.targets[t].is_classification(), "target '", target, "' is a regression target");
  std::vector<int64_t> out(targets[t].size());
  for (size_t i = 0; i < out.size(); ++i) out[i] = int64_t(targets[t][i]);
  return out;
}

std::string Dataset::where(int64_t row) const {
  return detail::cat(table_path(), ": row at line ", lines[row], " (id '", ids[row], "')");
}

namespace {

// The raw UTKFace release has no table: list the directory, labels come from the file names.
CsvTable list_images(const DatasetConfig& cfg) {
  CsvTable t;
  t.source = cfg.image_root;
  const std::string col = cfg.filename_column.empty() ? "file" : cfg.filename_column;
  t.header = {col};
  std::error_code ec;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(cfg.image_root, ec))
    if (e.is_regular_file()) names.push_back(e.path().filename().string());
  if (ec) throw Error(detail::cat("cannot list image_root '", cfg.image_root, "': ", ec.message()));
  std::sort(names.begin(), names.end());
  for (auto& n : names) {
    t.rows.push_back({n});
    t.lines.push_back(0);
  }
  return t;
}

bool same_value(const std::string& a, const std::string& b) {
  double x, y;
  if (parse_number(a, x) && parse_number(b, y)) return x == y;
  return a == b;
}

}  // namespace

Dataset load_dataset(const DatasetConfig& cfg_in, const LoadOptions& opt) {
  Dataset ds;
  ds.config = cfg_in;
  DatasetConfig& cfg = ds.config;
  CsvTable table = cfg.csv.empty() ? list_images(cfg) : read_csv(cfg.csv);
  if (cfg.csv.empty()) {
    if (cfg.image_column.empty()) cfg.image_column = table.header[0];
    if (cfg.id_column.empty()) cfg.id_column = table.header[0];
    if (cfg.filename_column.empty()) cfg.filename_column = table.header[0];
  }
  const std::string& file = table.source;
  ds.rows_read = table.num_rows();
  std::vector<bool> skip(size_t(table.num_rows()), false);

  auto bad = [&](int64_t r, const std::string& column, const std::string& message) {
    std::string msg = table.lines[r] > 0 ? detail::cat(file, ": row at line ", table.lines[r]) : detail::cat(file, ": file '", table.rows[r][0], "'");
    if (!column.empty()) msg += detail::cat(", column '", column, "'");
    msg += ": " + message;
    if (!cfg.skip_bad) throw Error(msg);
    if (!skip[r]) {
      skip[r] = true;
      if (int64_t(ds.bad_messages.size()) < opt.max_logged) std::cerr << "ember.data: skipping " << msg << "\n";
      ds.bad_messages.push_back(msg);
    }
  };

  // Labels encoded in file names become columns; where the table has the same column, both must agree.
  if (!cfg.filename_pattern.empty()) {
    const int64_t src = table.column(cfg.filename_column);
    std::vector<int64_t> field_col;
    const size_t original_width = table.header.size();
    for (const auto& f : cfg.filename_pattern.fields()) {
      if (!table.has_column(f)) {
        table.header.push_back(f);
        for (auto& row : table.rows) row.push_back("");
      }
      field_col.push_back(table.column(f));
    }
    for (int64_t r = 0; r < table.num_rows(); ++r) {
      std::map<std::string, std::string> fields;
      try {
        fields = cfg.filename_pattern.parse(table.rows[r][src]);
      } catch (const Error& e) {
        bad(r, cfg.filename_column, e.what());
        continue;
      }
      for (size_t f = 0; f < field_col.size(); ++f) {
        std::string& cell = table.rows[r][field_col[f]];
        const std::string& v = fields[cfg.filename_pattern.fields()[f]];
        if (size_t(field_col[f]) < original_width && !cell.empty() && !same_value(cell, v))
          bad(r, cfg.filename_pattern.fields()[f],
              detail::cat("value '", cell, "' disagrees with '", v, "' from the file name '", table.rows[r][src], "'"));
        cell = v;
      }
    }
  }

  // Resolve every configured column up front so a typo fails immediately, naming the file.
  const int64_t id_col = table.column(cfg.id_column);
  const int64_t img_col = cfg.image_column.empty() ? -1 : table.column(cfg.image_column);
  const int64_t group_col = cfg.group_column.empty() ? -1 : table.column(cfg.group_column);
  const int64_t drop_col = cfg.duplicates.drop_if_nonempty.empty() ? -1 : table.column(cfg.duplicates.drop_if_nonempty);
  const int64_t dedupe_col = cfg.duplicates.dedupe_by.empty() ? -1 : table.column(cfg.duplicates.dedupe_by);
  std::vector<int64_t> num_cols, cat_cols, tgt_cols;
  for (const auto& c : cfg.numeric_features) num_cols.push_back(table.column(c));
  for (const auto& c : cfg.categorical_features) cat_cols.push_back(table.column(c));
  for (const auto& t : cfg.targets) tgt_cols.push_back(table.column(t.column));
  if (img_col >= 0) EMBER_CHECK(!cfg.image_root.empty(), file, ": image_column given but no image_root in the config");

  std::unordered_set<std::string> seen_ids, seen_hashes;
  std::vector<double> num_vals(num_cols.size()), tgt_vals(tgt_cols.size());
  std::vector<int64_t> kept;
  std::vector<std::string> paths;
  ds.numeric.resize(num_cols.size());
  ds.targets.resize(tgt_cols.size());
  for (int64_t r = 0; r < table.num_rows(); ++r) {
    if (skip[r]) continue;
    const auto& row = table.rows[r];
    if (drop_col >= 0 && !row[drop_col].empty()) {
      ++ds.dropped_duplicates;
      continue;
    }
    if (dedupe_col >= 0 && !seen_hashes.insert(row[dedupe_col]).second) {
      ++ds.dropped_duplicates;
      continue;
    }
    if (!seen_ids.insert(row[id_col]).second) {
      bad(r, cfg.id_column, detail::cat("id '", row[id_col], "' appears twice"));
      continue;
    }
    bool ok = true;
    for (size_t f = 0; f < num_cols.size() && ok; ++f) {
      const std::string& v = row[num_cols[f]];
      if (cfg.is_missing(v)) {
        num_vals[f] = std::numeric_limits<double>::quiet_NaN();
      } else if (!parse_number(v, num_vals[f])) {
        bad(r, cfg.numeric_features[f], detail::cat("'", v, "' is not a number"));
        ok = false;
      }
    }
    for (size_t t = 0; t < tgt_cols.size() && ok; ++t) {
      const TargetSpec& spec = cfg.targets[t];
      const std::string& v = row[tgt_cols[t]];
      if (cfg.is_missing(v)) {
        bad(r, spec.column, "missing target value");
        ok = false;
      } else if (spec.is_classification()) {
        auto it = std::find(spec.classes.begin(), spec.classes.end(), v);
        double idx;
        if (it != spec.classes.end()) tgt_vals[t] = double(it - spec.classes.begin());
        else if (parse_number(v, idx) && idx == std::floor(idx) && idx >= 0 && idx < double(spec.classes.size()))
          tgt_vals[t] = idx;
        else {
          bad(r, spec.column, detail::cat("target '", v, "' is out of range (classes: ", spec.classes.size(), ")"));
          ok = false;
        }
      } else if (!parse_number(v, tgt_vals[t])) {
        bad(r, spec.column, detail::cat("target '", v, "' is not a number"));
        ok = false;
      }
    }
    std::string path;
    if (ok && img_col >= 0) {
      try {
        path = resolve_inside(cfg.image_root, row[img_col], detail::cat("image '", row[img_col], "'"));
      } catch (const Error& e) {
        bad(r, cfg.image_column, e.what());
        ok = false;
      }
    }
    if (!ok) continue;
    kept.push_back(r);
    paths.push_back(path);
    for (size_t f = 0; f < num_cols.size(); ++f) ds.numeric[f].push_back(num_vals[f]);
    for (size_t t = 0; t < tgt_cols.size(); ++t) ds.targets[t].push_back(tgt_vals[t]);
  }

  // Image checks in parallel (stat + header read per file); reported in row order.
  std::vector<std::string> reasons(kept.size());
  if (img_col >= 0 && opt.check_images) {
    std::atomic<size_t> next{0};
    auto work = [&] {
      for (size_t i; (i = next.fetch_add(1)) < kept.size();) reasons[i] = check_image_file(paths[i], cfg.max_pixels);
    };
    const unsigned n_threads = std::max(1u, std::min(4u, std::thread::hardware_concurrency()));
    std::vector<std::thread> pool;
    for (unsigned t = 1; t < n_threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
  }
  std::vector<size_t> final_rows;
  for (size_t i = 0; i < kept.size(); ++i) {
    if (!reasons[i].empty()) {
      bad(kept[i], cfg.image_column, detail::cat("image '", paths[i], "': ", reasons[i]));
      continue;
    }
    final_rows.push_back(i);
  }

  // Compact everything to the final rows.
  auto compact_d = [&](std::vector<double>& v) {
    std::vector<double> out;
    for (size_t i : final_rows) out.push_back(v[i]);
    v = std::move(out);
  };
  for (auto& v : ds.numeric) compact_d(v);
  for (auto& v : ds.targets) compact_d(v);
  std::vector<std::pair<std::vector<std::string>*, size_t>> kept_columns;  // (destination, table column)
  for (size_t c = 0; c < table.header.size(); ++c) {
    const std::string& name = table.header[c];
    bool hidden = std::count(cfg.forbidden_columns.begin(), cfg.forbidden_columns.end(), name) ||
                  std::count(cfg.drop_columns.begin(), cfg.drop_columns.end(), name);
    if (!hidden) kept_columns.emplace_back(&ds.columns[name], c);
  }
  ds.categorical.resize(cat_cols.size());
  for (size_t i : final_rows) {
    const auto& row = table.rows[kept[i]];
    ds.ids.push_back(row[id_col]);
    ds.lines.push_back(table.lines[kept[i]]);
    if (img_col >= 0) ds.image_paths.push_back(paths[i]);
    ds.groups.push_back(group_col >= 0 && !row[group_col].empty() ? row[group_col] : row[id_col]);
    ds.dedupe_keys.push_back(dedupe_col >= 0 ? row[dedupe_col] : "");
    for (size_t f = 0; f < cat_cols.size(); ++f)
      ds.categorical[f].push_back(cfg.is_missing(row[cat_cols[f]]) ? "" : row[cat_cols[f]]);
    for (auto& [values, c] : kept_columns) values->push_back(row[c]);
  }
  ds.skipped_bad = int64_t(ds.bad_messages.size());
  if (ds.skipped_bad > 0)
    std::cerr << "ember.data: " << file << ": skipped " << ds.skipped_bad << " bad row(s) of " << ds.rows_read << "\n";
  ds.build_index();
  return ds;
}

Dataset load_dataset(const std::string& config_path, const std::string& root_override, const LoadOptions& options) {
  return load_dataset(load_dataset_config(config_path, root_override), options);
}

}  // namespace ember::data
