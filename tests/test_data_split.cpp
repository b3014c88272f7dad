// Split properties: groups never straddle sets, stratified proportions, determinism, file round
// trip and id checks, duplicate-awareness, k folds.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "data/split.h"
#include "engine/error.h"
#include "test_data_util.h"

using namespace ember::data;
using ::testing::HasSubstr;

namespace {

// n rows in groups of 1..3 rows; label 1 for ~30% of groups (all rows of a group share it).
Dataset make_dataset(int64_t n, uint64_t salt = 0) {
  Dataset ds;
  ds.config.name = "toy";
  TargetSpec y;
  y.name = y.column = "y";
  y.classes = {"0", "1"};
  ds.config.targets = {y};
  ds.targets.resize(1);
  int64_t group = 0, left = 0, label = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (left == 0) {
      ++group;
      left = 1 + int64_t((group * 7 + salt) % 3);
      label = (group * 13 + salt) % 10 < 3 ? 1 : 0;
    }
    --left;
    ds.ids.push_back("id" + std::to_string(r));
    ds.groups.push_back("g" + std::to_string(group));
    ds.dedupe_keys.push_back("");
    ds.lines.push_back(r + 2);
    ds.targets[0].push_back(double(label));
  }
  ds.build_index();
  return ds;
}

std::vector<int> set_of_rows(const Dataset& ds, const Split& s) {
  std::vector<int> out(size_t(ds.size()), -1);
  for (int64_t r : s.train) out[r] = 0;
  for (int64_t r : s.val) out[r] = 1;
  for (int64_t r : s.test) out[r] = 2;
  return out;
}

}  // namespace

TEST(DataSplit, EveryRowOnceAndNoGroupInTwoSets) {
  Dataset ds = make_dataset(1000);
  Split s = make_split(ds, {});
  std::vector<int> set = set_of_rows(ds, s);
  for (int v : set) ASSERT_GE(v, 0);
  EXPECT_EQ(s.train.size() + s.val.size() + s.test.size(), 1000u);
  std::map<std::string, int> group_set;
  for (int64_t r = 0; r < ds.size(); ++r) {
    auto [it, inserted] = group_set.emplace(ds.groups[r], set[r]);
    EXPECT_EQ(it->second, set[r]) << "group " << ds.groups[r] << " is in two sets";
  }
  EXPECT_NO_THROW(check_groups_disjoint(ds, set));
}

TEST(DataSplit, ProportionsAndStratification) {
  Dataset ds = make_dataset(3000);
  Split s = make_split(ds, {.seed = 42});
  const double n = double(ds.size());
  EXPECT_NEAR(s.train.size() / n, 0.7, 0.02);
  EXPECT_NEAR(s.val.size() / n, 0.1, 0.02);
  EXPECT_NEAR(s.test.size() / n, 0.2, 0.02);
  double overall = 0;
  for (double v : ds.targets[0]) overall += v;
  overall /= n;
  for (const auto* part : {&s.train, &s.val, &s.test}) {
    double pos = 0;
    for (int64_t r : *part) pos += ds.targets[0][r];
    EXPECT_NEAR(pos / double(part->size()), overall, 0.02) << "set of " << part->size() << " rows";
  }
}

TEST(DataSplit, DeterministicFromSeed) {
  Dataset ds = make_dataset(500);
  Split a = make_split(ds, {.seed = 7}), b = make_split(ds, {.seed = 7});
  Split c = make_split(ds, {.seed = 8});
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.test, b.test);
  EXPECT_NE(a.test, c.test);
}

TEST(DataSplit, FileRoundTripAndReuse) {
  ember_test::TempDir dir("data_split");
  Dataset ds = make_dataset(300);
  Split a = make_split(ds, {.seed = 1});
  save_split(dir.file("split.csv"), ds, a);
  Split b = load_split(dir.file("split.csv"), ds);
  EXPECT_EQ(a.train, b.train);
  EXPECT_EQ(a.val, b.val);
  EXPECT_EQ(a.test, b.test);
  // load_or_create: the first call writes, later calls reuse the file whatever their seed.
  Split c = load_or_create_split(dir.file("reuse.csv"), ds, {.seed = 5});
  Split d = load_or_create_split(dir.file("reuse.csv"), ds, {.seed = 6});
  EXPECT_EQ(c.test, d.test);
}

TEST(DataSplit, LoadChecksIdsLineUp) {
  ember_test::TempDir dir("data_split_ids");
  Dataset ds = make_dataset(50);
  save_split(dir.file("s.csv"), ds, make_split(ds, {}));
  Dataset smaller = make_dataset(49);  // id49 is in the file but not in the data
  EXPECT_THAT([&] {
    try {
      load_split(dir.file("s.csv"), smaller);
    } catch (const ember::Error& e) {
      return std::string(e.what());
    }
    return std::string();
  }(), HasSubstr("id49"));
  Dataset larger = make_dataset(51);  // id50 is missing from the file
  EXPECT_THROW(load_split(dir.file("s.csv"), larger), ember::Error);
  // A hand-edited file that puts one group in two sets is refused, naming the group.
  ember_test::write_text(dir.file("leak.csv"), "id,set\nid0,train\nid1,test\n");
  Dataset two = make_dataset(2);
  ASSERT_EQ(two.groups[0], two.groups[1]);
  try {
    load_split(dir.file("leak.csv"), two);
    FAIL();
  } catch (const ember::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr(two.groups[0]));
  }
}

TEST(DataSplit, DuplicateKeysStayTogether) {
  Dataset ds = make_dataset(400);
  // Pretend every 10th row is a byte-identical copy of row 0 (same hash, own group).
  for (int64_t r = 0; r < ds.size(); r += 10) ds.dedupe_keys[r] = "same-md5";
  Split s = make_split(ds, {.train = 0.5, .val = 0.0, .test = 0.5, .seed = 3});
  std::vector<int> set = set_of_rows(ds, s);
  for (int64_t r = 0; r < ds.size(); r += 10) EXPECT_EQ(set[r], set[0]);
  EXPECT_TRUE(s.val.empty());
}

TEST(DataSplit, KFoldsAreGroupedAndBalanced) {
  ember_test::TempDir dir("data_folds");
  Dataset ds = make_dataset(1000);
  std::vector<int> folds = make_folds(ds, 5, {.seed = 11});
  std::vector<int> count(5, 0);
  for (int f : folds) ++count.at(size_t(f));
  for (int c : count) EXPECT_NEAR(c, 200, 15);
  EXPECT_NO_THROW(check_groups_disjoint(ds, folds));
  Split f2 = fold_split(folds, 2);
  EXPECT_EQ(int(f2.val.size()), count[2]);
  EXPECT_EQ(f2.train.size() + f2.val.size(), 1000u);
  save_folds(dir.file("folds.csv"), ds, folds);
  EXPECT_EQ(load_folds(dir.file("folds.csv"), ds), folds);
  EXPECT_THROW(make_folds(ds, 1), ember::Error);
}
