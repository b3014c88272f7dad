#include "data/split.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <unordered_map>

#include "data/csv.h"
#include "engine/error.h"
#include "engine/rng.h"

namespace ember::data {

namespace {

// Union-find over rows: rows sharing a group key or a non-empty dedupe key end up in one unit.
std::vector<int64_t> group_units(const Dataset& ds, int64_t& n_units) {
  const int64_t n = ds.size();
  std::vector<int64_t> parent(n);
  std::iota(parent.begin(), parent.end(), 0);
  auto find = [&](int64_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  };
  auto join_by = [&](const std::vector<std::string>& keys) {
    std::unordered_map<std::string, int64_t> first;
    for (int64_t r = 0; r < n; ++r) {
      if (keys[r].empty()) continue;
      auto [it, inserted] = first.emplace(keys[r], r);
      if (!inserted) parent[find(r)] = find(it->second);
    }
  };
  join_by(ds.groups);
  join_by(ds.dedupe_keys);
  // Number units by their first row, so unit order is independent of hashing.
  std::vector<int64_t> unit(n), id_of_root(n, -1);
  n_units = 0;
  for (int64_t r = 0; r < n; ++r) {
    int64_t root = find(r);
    if (id_of_root[root] < 0) id_of_root[root] = n_units++;
    unit[r] = id_of_root[root];
  }
  return unit;
}

// Stratum of each row: class index, quantile bin of a regression target, or 0.
std::vector<int64_t> row_strata(const Dataset& ds, const SplitOptions& o) {
  std::string name = o.stratify_by.empty() ? ds.config.stratify_by : o.stratify_by;
  if (name.empty())
    for (const auto& t : ds.config.targets)
      if (t.is_classification()) {
        name = t.name;
        break;
      }
  std::vector<int64_t> s(size_t(ds.size()), 0);
  if (name.empty() || name == "none") return s;
  const int64_t t = ds.target_index(name);
  const auto& v = ds.targets[t];
  if (ds.config.targets[t].is_classification()) {
    for (size_t i = 0; i < v.size(); ++i) s[i] = int64_t(v[i]);
  } else {
    std::vector<double> sorted = v;
    std::sort(sorted.begin(), sorted.end());
    for (size_t i = 0; i < v.size(); ++i) {
      const double rank = double(std::lower_bound(sorted.begin(), sorted.end(), v[i]) - sorted.begin());
      s[i] = std::min<int64_t>(o.regression_bins - 1, int64_t(rank * o.regression_bins / double(v.size())));
    }
  }
  return s;
}

// Assigns each unit to one of fractions.size() sets: within each stratum, units in seeded random
// order go to the set whose row count lags its target share the most.
std::vector<int> assign_units(const Dataset& ds, const std::vector<double>& fractions, const SplitOptions& o) {
  int64_t n_units = 0;
  const std::vector<int64_t> unit = group_units(ds, n_units);
  const std::vector<int64_t> strata = row_strata(ds, o);
  std::vector<int64_t> unit_size(n_units, 0);
  std::vector<std::map<int64_t, int64_t>> unit_votes(n_units);
  for (int64_t r = 0; r < ds.size(); ++r) {
    ++unit_size[unit[r]];
    ++unit_votes[unit[r]][strata[r]];
  }
  std::vector<int64_t> unit_stratum(n_units);
  for (int64_t u = 0; u < n_units; ++u)  // majority stratum (ties: the smallest)
    unit_stratum[u] = std::max_element(unit_votes[u].begin(), unit_votes[u].end(),
                                       [](auto& a, auto& b) { return a.second < b.second; })->first;
  Generator gen(o.seed);
  const std::vector<int64_t> order = gen.permutation(n_units);
  std::map<int64_t, int64_t> stratum_rows;
  for (int64_t u = 0; u < n_units; ++u) stratum_rows[unit_stratum[u]] += unit_size[u];
  std::map<int64_t, std::vector<int64_t>> assigned;  // stratum -> rows per set
  std::vector<int> set_of_unit(n_units, 0);
  const size_t k = fractions.size();
  for (int64_t u : order) {
    const int64_t s = unit_stratum[u];
    auto& got = assigned[s];
    if (got.empty()) got.assign(k, 0);
    size_t best = 0;
    double best_deficit = -1e300;
    for (size_t j = 0; j < k; ++j) {
      const double deficit = fractions[j] * double(stratum_rows[s]) - double(got[j]);
      if (fractions[j] > 0 && deficit > best_deficit + 1e-9) best = j, best_deficit = deficit;
    }
    got[best] += unit_size[u];
    set_of_unit[u] = int(best);
  }
  std::vector<int> set_of_row(size_t(ds.size()));
  for (int64_t r = 0; r < ds.size(); ++r) set_of_row[r] = set_of_unit[unit[r]];
  return set_of_row;
}

const char* kSetNames[3] = {"train", "val", "test"};

Split split_from_sets(const std::vector<int>& set_of_row) {
  Split s;
  for (size_t r = 0; r < set_of_row.size(); ++r)
    (set_of_row[r] == 0 ? s.train : set_of_row[r] == 1 ? s.val : s.test).push_back(int64_t(r));
  return s;
}

// Reads an id,<column> file and maps every dataset row to its value; both directions must match.
std::vector<std::string> read_assignment(const std::string& path, const Dataset& ds, const std::string& column) {
  CsvTable t = read_csv(path);
  const int64_t id_col = t.column("id"), val_col = t.column(column);
  std::vector<std::string> value(size_t(ds.size()));
  std::vector<bool> seen(size_t(ds.size()), false);
  for (int64_t r = 0; r < t.num_rows(); ++r) {
    const std::string& id = t.rows[r][id_col];
    int64_t row;
    try {
      row = ds.index_of(id);
    } catch (const Error&) {
      throw Error(detail::cat(path, ": line ", t.lines[r], ": id '", id, "' is not in the dataset (",
                              ds.table_path(), "); the split was made for other data"));
    }
    if (seen[row]) throw Error(detail::cat(path, ": line ", t.lines[r], ": id '", id, "' listed twice"));
    seen[row] = true;
    value[row] = t.rows[r][val_col];
  }
  for (int64_t r = 0; r < ds.size(); ++r)
    if (!seen[r]) throw Error(detail::cat(path, ": id '", ds.ids[r], "' of the dataset is missing from the split file"));
  return value;
}

}  // namespace

Split make_split(const Dataset& ds, const SplitOptions& o) {
  EMBER_CHECK(o.train >= 0 && o.val >= 0 && o.test >= 0 && std::abs(o.train + o.val + o.test - 1.0) < 1e-6,
              "make_split: fractions ", o.train, "/", o.val, "/", o.test, " must be >= 0 and sum to 1");
  return split_from_sets(assign_units(ds, {o.train, o.val, o.test}, o));
}

std::vector<int> make_folds(const Dataset& ds, int k, const SplitOptions& o) {
  EMBER_CHECK(k >= 2, "make_folds: k must be >= 2, got ", k);
  return assign_units(ds, std::vector<double>(size_t(k), 1.0 / k), o);
}

Split fold_split(const std::vector<int>& folds, int fold) {
  Split s;
  for (size_t r = 0; r < folds.size(); ++r) (folds[r] == fold ? s.val : s.train).push_back(int64_t(r));
  return s;
}

void check_groups_disjoint(const Dataset& ds, const std::vector<int>& set_of_row) {
  for (const auto* keys : {&ds.groups, &ds.dedupe_keys}) {
    std::unordered_map<std::string, int64_t> first;
    for (int64_t r = 0; r < ds.size(); ++r) {
      const std::string& key = (*keys)[r];
      if (key.empty()) continue;
      auto [it, inserted] = first.emplace(key, r);
      if (!inserted && set_of_row[it->second] != set_of_row[r])
        throw Error(detail::cat("split: group '", key, "' has rows in two sets (ids '", ds.ids[it->second], "' and '",
                                ds.ids[r], "')"));
    }
  }
}

void save_split(const std::string& path, const Dataset& ds, const Split& split) {
  std::vector<int> set_of_row(size_t(ds.size()), -1);
  for (int s = 0; s < 3; ++s)
    for (int64_t r : (s == 0 ? split.train : s == 1 ? split.val : split.test)) set_of_row.at(size_t(r)) = s;
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error(detail::cat("cannot write split file '", path, "'"));
  out << "id,set\n";
  for (int64_t r = 0; r < ds.size(); ++r) {
    EMBER_CHECK(set_of_row[r] >= 0, "save_split: row ", ds.where(r), " is in no set");
    out << csv_escape(ds.ids[r]) << ',' << kSetNames[set_of_row[r]] << '\n';
  }
  if (!out) throw Error(detail::cat("write error on split file '", path, "'"));
}

Split load_split(const std::string& path, const Dataset& ds) {
  const std::vector<std::string> value = read_assignment(path, ds, "set");
  std::vector<int> set_of_row(value.size());
  for (size_t r = 0; r < value.size(); ++r) {
    auto it = std::find(std::begin(kSetNames), std::end(kSetNames), value[r]);
    if (it == std::end(kSetNames))
      throw Error(detail::cat(path, ": id '", ds.ids[r], "': set '", value[r], "' is not train, val or test"));
    set_of_row[r] = int(it - std::begin(kSetNames));
  }
  check_groups_disjoint(ds, set_of_row);
  return split_from_sets(set_of_row);
}

Split load_or_create_split(const std::string& path, const Dataset& ds, const SplitOptions& options) {
  if (std::filesystem::exists(path)) return load_split(path, ds);
  Split s = make_split(ds, options);
  save_split(path, ds, s);
  return s;
}

void save_folds(const std::string& path, const Dataset& ds, const std::vector<int>& folds) {
  EMBER_CHECK(int64_t(folds.size()) == ds.size(), "save_folds: ", folds.size(), " folds for ", ds.size(), " rows");
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error(detail::cat("cannot write folds file '", path, "'"));
  out << "id,fold\n";
  for (int64_t r = 0; r < ds.size(); ++r) out << csv_escape(ds.ids[r]) << ',' << folds[r] << '\n';
}

std::vector<int> load_folds(const std::string& path, const Dataset& ds) {
  const std::vector<std::string> value = read_assignment(path, ds, "fold");
  std::vector<int> folds(value.size());
  for (size_t r = 0; r < value.size(); ++r) {
    double f;
    if (!parse_number(value[r], f) || f < 0 || f != std::floor(f))
      throw Error(detail::cat(path, ": id '", ds.ids[r], "': fold '", value[r], "' is not a non-negative integer"));
    folds[r] = int(f);
  }
  check_groups_disjoint(ds, folds);
  return folds;
}

}  // namespace ember::data
