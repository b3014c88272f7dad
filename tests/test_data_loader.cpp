// The loader (determinism across worker counts, cache, batches) and the synthetic dataset end to end.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "data/csv.h"
#include "data/loader.h"
#include "data/split.h"
#include "data/synthetic.h"
#include "engine/error.h"
#include "test_data_util.h"

using namespace ember::data;
using ::testing::HasSubstr;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Epoch {
  std::vector<std::vector<float>> images, features;
  std::vector<std::vector<int64_t>> labels, rows;
  std::vector<std::vector<float>> ages;
};

Epoch run_epoch(DataLoader& loader, int64_t epoch) {
  Epoch e;
  loader.start_epoch(epoch);
  Batch b;
  while (loader.next(b)) {
    e.images.push_back(b.images.to_vector<float>());
    e.features.push_back(b.features.to_vector<float>());
    e.labels.push_back(b.targets[0].to_vector<int64_t>());
    e.ages.push_back(b.targets[1].to_vector<float>());
    e.rows.push_back(b.rows);
  }
  return e;
}

ImagePipeline augmenting_pipeline() {
  ImagePipeline p;
  p.cache_h = p.cache_w = 36;
  p.out_h = p.out_w = 32;
  p.random_crop = true;
  p.hflip = true;
  p.rotate_degrees = 10;
  p.brightness = p.contrast = 0.2f;
  return p;
}

class SyntheticTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new ember_test::TempDir("data_synth");
    info_ = write_synthetic_dataset(dir_->path.string(), {.rows = 240, .image_size = 32, .seed = 5, .duplicates = 6});
  }
  static void TearDownTestSuite() { delete dir_; }
  static ember_test::TempDir* dir_;
  static SyntheticDataset info_;
};
ember_test::TempDir* SyntheticTest::dir_ = nullptr;
SyntheticDataset SyntheticTest::info_;

}  // namespace

TEST_F(SyntheticTest, DeterministicFromSeed) {
  ember_test::TempDir again("data_synth_again");
  write_synthetic_dataset(again.path.string(), {.rows = 240, .image_size = 32, .seed = 5, .duplicates = 6});
  EXPECT_EQ(slurp(info_.csv_path), slurp(again.file("labels.csv")));
  EXPECT_EQ(slurp(dir_->file("images/img_00017.png")), slurp(again.file("images/img_00017.png")));
  ember_test::TempDir other("data_synth_other");
  write_synthetic_dataset(other.path.string(), {.rows = 240, .image_size = 32, .seed = 6, .duplicates = 6});
  EXPECT_NE(slurp(info_.csv_path), slurp(other.file("labels.csv")));
}

TEST_F(SyntheticTest, LabelNeedsBothImageAndTable) {
  // Check the generator's promise on its own columns: the image-side fact (shape) alone and the
  // table-side fact (marker) alone each explain the label much less well than both together.
  CsvTable t = read_csv(info_.csv_path);
  const int64_t shape = t.column("shape"), marker = t.column("marker"), label = t.column("label");
  int n = 0, by_image = 0, by_table = 0, by_both = 0;
  for (const auto& row : t.rows) {
    if (row[marker] == "NA") continue;
    const double m = std::stod(row[marker]), s = row[shape] == "circle" ? 1 : -1;
    const int y = std::stoi(row[label]);
    ++n;
    by_image += (s > 0) == (y == 1);
    by_table += (m > 0) == (y == 1);
    by_both += (2.2 * s + 2.2 * m > 0) == (y == 1);
  }
  EXPECT_LT(by_image, 0.9 * n);
  EXPECT_LT(by_table, 0.9 * n);
  EXPECT_GT(by_image, 0.6 * n);
  EXPECT_GT(by_table, 0.6 * n);
  EXPECT_GT(by_both, 0.9 * n);
}

TEST_F(SyntheticTest, EndToEnd) {
  Dataset ds = load_dataset(info_.config_path);
  EXPECT_EQ(ds.rows_read, 246);
  EXPECT_EQ(ds.size(), 240);  // byte-identical copies dropped
  EXPECT_EQ(ds.dropped_duplicates, 6);
  EXPECT_EQ(ds.columns.count("shape"), 0u);  // the leak column never reaches the model
  Split split = make_split(ds, {.seed = 1});
  std::map<std::string, int> patient_set;
  for (int s = 0; s < 3; ++s)
    for (int64_t r : (s == 0 ? split.train : s == 1 ? split.val : split.test)) {
      auto [it, inserted] = patient_set.emplace(ds.groups[r], s);
      EXPECT_EQ(it->second, s) << "patient " << ds.groups[r] << " in two sets";
    }
  TabularPreprocessor prep;
  prep.fit(ds, split.train);
  EXPECT_THAT(prep.report(), HasSubstr("marker: numeric"));
  EXPECT_EQ(prep.num_features(), 2 + 2 + 5 + 3);  // marker(+missing), bmi(+missing), site 4+1, sex 2+1

  auto cache = ImageCache::for_dataset(ds, augmenting_pipeline());
  LoaderOptions opt;
  opt.batch_size = 32;
  opt.train = true;
  opt.seed = 9;
  opt.image = augmenting_pipeline();
  DataLoader loader(ds, split.train, &prep, opt, cache);
  Epoch e = run_epoch(loader, 0);
  ASSERT_EQ(int64_t(e.rows.size()), loader.num_batches());
  std::set<int64_t> seen;
  for (size_t b = 0; b < e.rows.size(); ++b)
    for (size_t i = 0; i < e.rows[b].size(); ++i) {
      const int64_t r = e.rows[b][i];
      seen.insert(r);
      EXPECT_EQ(e.labels[b][i], int64_t(ds.targets[0][r]));
      EXPECT_FLOAT_EQ(e.ages[b][i], float(ds.targets[1][r]));
    }
  EXPECT_EQ(seen, std::set<int64_t>(split.train.begin(), split.train.end()));
  EXPECT_EQ(e.images[0].size(), 32u * 3 * 32 * 32);
  EXPECT_EQ(cache->filled(), int64_t(split.train.size()));  // the first epoch filled the cache
}

TEST_F(SyntheticTest, SameBatchesForAnyWorkerCountAndWithCache) {
  Dataset ds = load_dataset(info_.config_path);
  Split split = make_split(ds, {});
  TabularPreprocessor prep;
  prep.fit(ds, split.train);
  LoaderOptions opt;
  opt.batch_size = 20;
  opt.train = true;
  opt.seed = 123;
  opt.prefetch_batches = 2;
  opt.image = augmenting_pipeline();
  std::vector<Epoch> runs;
  for (int workers : {1, 3, 0}) {
    opt.num_workers = workers;
    DataLoader loader(ds, split.train, &prep, opt);
    runs.push_back(run_epoch(loader, 4));
  }
  opt.num_workers = 2;
  auto cache = ImageCache::for_dataset(ds, opt.image);
  DataLoader cached(ds, split.train, &prep, opt, cache);
  run_epoch(cached, 0);                   // fills the cache
  runs.push_back(run_epoch(cached, 4));  // served from the cache
  for (size_t k = 1; k < runs.size(); ++k) {
    EXPECT_EQ(runs[k].rows, runs[0].rows) << "run " << k;
    EXPECT_EQ(runs[k].images, runs[0].images) << "run " << k;
    EXPECT_EQ(runs[k].features, runs[0].features) << "run " << k;
    EXPECT_EQ(runs[k].labels, runs[0].labels) << "run " << k;
  }
  // Another epoch: another order and other augmentations.
  DataLoader loader(ds, split.train, &prep, opt);
  Epoch other = run_epoch(loader, 5);
  EXPECT_NE(other.rows, runs[0].rows);
}

TEST_F(SyntheticTest, EvalModeIsPlainAndOrdered) {
  Dataset ds = load_dataset(info_.config_path);
  LoaderOptions opt;
  opt.batch_size = 64;
  opt.shuffle = false;
  opt.image.out_h = opt.image.out_w = 32;
  opt.image.normalization = Normalization::None;
  std::vector<int64_t> rows = {3, 1, 2};
  DataLoader loader(ds, rows, nullptr, opt);
  loader.start_epoch(0);
  Batch b;
  ASSERT_TRUE(loader.next(b));
  EXPECT_EQ(b.rows, rows);
  EXPECT_EQ(b.features.shape(), (ember::Shape{3, 0}));
  // Without augmentation the batch is exactly the decoded image / 255 in CHW order.
  Image img = decode_image(ds.image_paths[1], 1 << 20);
  EXPECT_NEAR(b.images.at({1, 2, 5, 7}), img.at(5, 7, 2) / 255.0, 1e-6);
  EXPECT_FALSE(loader.next(b));
}

TEST(DataLoaderErrors, CorruptImageDuringLoadingNamesTheFile) {
  ember_test::TempDir dir("data_loader_bad");
  write_synthetic_dataset(dir.path.string(), {.rows = 8, .image_size = 16, .duplicates = 0});
  ember_test::write_text(dir.file("images/img_00003.png"), "garbage");
  Dataset ds = load_dataset(load_dataset_config(dir.file("synthetic.json")), {.check_images = false});
  LoaderOptions opt;
  opt.batch_size = 4;
  opt.shuffle = false;
  opt.image.out_h = opt.image.out_w = 16;
  DataLoader loader(ds, {0, 1, 2, 3, 4, 5, 6, 7}, nullptr, opt);
  loader.start_epoch(0);
  Batch b;
  try {
    while (loader.next(b)) {
    }
    FAIL() << "expected an error";
  } catch (const ember::Error& e) {
    EXPECT_THAT(e.what(), HasSubstr("img_00003.png"));
  }
  // With the default checks and skip_bad the bad row is skipped and counted at load time.
  DatasetConfig cfg = load_dataset_config(dir.file("synthetic.json"));
  cfg.skip_bad = true;
  Dataset skipped = load_dataset(cfg);
  EXPECT_EQ(skipped.size(), 7);
  EXPECT_EQ(skipped.skipped_bad, 1);
}
