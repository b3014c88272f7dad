// The shipped dataset configs against the real data in ../shared (skipped when it is absent).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <unordered_set>

#include "data/loader.h"
#include "data/split.h"
#include "test_data_util.h"

using namespace ember::data;
using ::testing::HasSubstr;

namespace {
std::string config(const char* name) { return std::string(EMBER_SOURCE_DIR) + "/experiments/datasets/" + name; }
bool have(const char* sub) { return std::filesystem::exists(ember_test::shared_dir() + "/data/" + sub + "/labels.csv"); }
}  // namespace

TEST(DataShared, UtkfaceDedupAndLabels) {
  if (!have("utkface")) GTEST_SKIP() << "no " << ember_test::shared_dir() << "/data/utkface: UTKFace test skipped";
  Dataset ds = load_dataset(config("utkface.json"));
  EXPECT_EQ(ds.rows_read, 23704);
  EXPECT_EQ(ds.dropped_duplicates, 390);
  EXPECT_EQ(ds.size(), 23704 - 390);
  EXPECT_EQ(ds.skipped_bad, 0);
  // Labels parsed from the file names agree with the table (load_dataset checks each row) and are in range.
  for (double age : ds.targets[ds.target_index("age")]) ASSERT_TRUE(age >= 1 && age <= 116) << age;
  Split s = make_split(ds, {.seed = 0});
  EXPECT_EQ(int64_t(s.train.size() + s.val.size() + s.test.size()), ds.size());
  // Files that are copies of each other never appear in the dataset twice.
  std::unordered_set<std::string> md5s;
  for (const auto& m : ds.column("md5")) EXPECT_TRUE(md5s.insert(m).second) << "md5 " << m << " kept twice";
}

TEST(DataShared, UtkfaceRootOverride) {
  if (!have("utkface")) GTEST_SKIP() << "no UTKFace data in " << ember_test::shared_dir();
  DatasetConfig c = load_dataset_config(config("utkface.json"), ember_test::shared_dir() + "/data/utkface");
  EXPECT_EQ(std::filesystem::path(c.csv).filename(), "labels.csv");
  EXPECT_TRUE(std::filesystem::exists(c.csv));
}

TEST(DataShared, Ham10000GroupsAndLeak) {
  if (!have("ham10000")) GTEST_SKIP() << "no " << ember_test::shared_dir() << "/data/ham10000: HAM10000 test skipped";
  Dataset ds = load_dataset(config("ham10000.json"));
  EXPECT_EQ(ds.size(), 2000);
  EXPECT_EQ(ds.columns.count("dx_type"), 0u);
  EXPECT_EQ(ds.columns.count("folder_label"), 0u);
  Split s = make_split(ds, {.seed = 0});
  std::map<std::string, int> lesion_set;
  for (int k = 0; k < 3; ++k)
    for (int64_t r : (k == 0 ? s.train : k == 1 ? s.val : s.test)) {
      auto [it, inserted] = lesion_set.emplace(ds.groups[r], k);
      ASSERT_EQ(it->second, k) << "lesion " << ds.groups[r] << " in two sets";
    }
  TabularPreprocessor prep;
  prep.fit(ds, s.train);
  for (const auto& name : prep.feature_names()) {
    EXPECT_THAT(name, ::testing::Not(HasSubstr("dx_type")));
    EXPECT_THAT(name, ::testing::Not(HasSubstr("dx")));
  }
  EXPECT_EQ(prep.numeric()[0].name, "age");
  EXPECT_TRUE(prep.numeric()[0].indicator);  // age is missing for some rows
  // Both classes present in every set (stratified by dx).
  for (const auto* part : {&s.train, &s.val, &s.test}) {
    double pos = 0;
    for (int64_t r : *part) pos += ds.targets[0][r];
    EXPECT_NEAR(pos / double(part->size()), 0.5, 0.08);
  }
  std::cout << prep.report();
  // A couple of batches go through the loader.
  LoaderOptions opt;
  opt.batch_size = 16;
  opt.num_workers = 2;
  opt.image.out_h = opt.image.out_w = 64;
  DataLoader loader(ds, s.val, &prep, opt);
  loader.start_epoch(0);
  Batch b;
  ASSERT_TRUE(loader.next(b));
  EXPECT_EQ(b.images.shape(), (ember::Shape{16, 3, 64, 64}));
  EXPECT_EQ(b.features.shape(), (ember::Shape{16, prep.num_features()}));
}
