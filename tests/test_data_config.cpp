// Dataset configs, file-name labels (UTKFace forms), path escapes, dataset loading and bad rows.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>

#include "data/config.h"
#include "data/dataset.h"
#include "data/filename_pattern.h"
#include "data/image.h"
#include "engine/error.h"
#include "test_data_util.h"

using namespace ember::data;
using ::testing::HasSubstr;

namespace {
FilenamePattern utk() { return FilenamePattern("<age>_<gender>_<race>_<datetime>", {".jpg", ".jpg.chip.jpg"}); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ember::Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(DataFilename, UtkfaceBothForms) {
  auto a = utk().parse("26_1_2_20170116174525125.jpg");
  EXPECT_EQ(a["age"], "26");
  EXPECT_EQ(a["gender"], "1");
  EXPECT_EQ(a["race"], "2");
  EXPECT_EQ(a["datetime"], "20170116174525125");
  auto b = utk().parse("/some/dir/100_0_0_20170112213500903.jpg.chip.jpg");
  EXPECT_EQ(b["age"], "100");
  EXPECT_EQ(b["datetime"], "20170112213500903");  // the .jpg.chip.jpg suffix is not part of it
}

TEST(DataFilename, BrokenNamesAreRejectedClearly) {
  // The original release has names with a field missing, e.g. "39_1_20170116174525125.jpg.chip.jpg".
  std::string e = error_of([] { utk().parse("39_1_20170116174525125.jpg.chip.jpg"); });
  EXPECT_THAT(e, HasSubstr("39_1_20170116174525125.jpg.chip.jpg"));
  EXPECT_THAT(e, HasSubstr("missing"));
  EXPECT_THAT(error_of([] { utk().parse("26__2_20170116174525125.jpg"); }), HasSubstr("<gender> is empty"));
  EXPECT_THAT(error_of([] { utk().parse("26_1_2_2017.png"); }), HasSubstr("suffix"));
  EXPECT_THROW(FilenamePattern("<a><b>", {}), ember::Error);
}

TEST(DataConfig, PathsResolveRelativeToConfigAndMayNotEscape) {
  EXPECT_EQ(resolve_inside("/data/root", "images", "x"), "/data/root/images");
  EXPECT_EQ(resolve_inside("/data/root", "a/../b.jpg", "x"), "/data/root/b.jpg");
  EXPECT_THAT(error_of([] { resolve_inside("/data/root", "../etc/passwd", "image 'p'"); }), HasSubstr("escapes"));
  EXPECT_THROW(resolve_inside("/data/root", "/etc/passwd", "x"), ember::Error);
  EXPECT_THROW(resolve_inside("/data/root", "a/../../root2/x", "x"), ember::Error);

  DatasetConfig c = parse_dataset_config(R"({"root": "../data", "csv": "t.csv", "image_root": "img", "id_column": "id",
      "targets": [{"name": "y", "task": "binary"}]})", "/work/cfg");
  EXPECT_EQ(c.root, "/work/data");
  EXPECT_EQ(c.csv, "/work/data/t.csv");
  EXPECT_EQ(c.image_root, "/work/data/img");
  DatasetConfig o = parse_dataset_config(R"({"root": "../data", "csv": "t.csv", "id_column": "id",
      "targets": [{"name": "y", "task": "binary"}]})", "/work/cfg", "/elsewhere/mine");
  EXPECT_EQ(o.csv, "/elsewhere/mine/t.csv");  // the root override wins
  EXPECT_THAT(error_of([] {
                parse_dataset_config(R"({"csv": "../t.csv", "targets": [{"name": "y", "task": "binary"}]})", "/w");
              }),
              HasSubstr("escapes"));
}

TEST(DataConfig, SchemaErrors) {
  EXPECT_THAT(error_of([] { parse_dataset_config("{not json", "/w", "", "cfg.json"); }), HasSubstr("cfg.json"));
  EXPECT_THAT(error_of([] { parse_dataset_config(R"({"csv": "t.csv"})", "/w"); }), HasSubstr("targets"));
  EXPECT_THAT(error_of([] {
                parse_dataset_config(R"({"csv": "t.csv", "targets": [{"name": "y", "task": "ordinal"}]})", "/w");
              }),
              HasSubstr("ordinal"));
  // A forbidden (leaking) column can never be used as a feature.
  EXPECT_THAT(error_of([] {
                parse_dataset_config(R"({"csv": "t.csv", "numeric_features": ["dx_type"], "forbidden_columns":
                    ["dx_type"], "targets": [{"name": "y", "task": "binary"}]})", "/w");
              }),
              HasSubstr("dx_type"));
}

class DataDatasetTest : public ::testing::Test {
 protected:
  ember_test::TempDir dir{"data_config"};
  void SetUp() override {
    Image img(8, 8, 3);
    for (auto& v : img.px) v = 100;
    for (const char* name : {"a.png", "b.png", "c.png", "d.png"}) write_image(dir.file(std::string("img/") + name), img);
    ember_test::write_text(dir.file("img/empty.png"), "");
  }
  std::string config(const std::string& csv_text, bool skip_bad, const std::string& extra = "") {
    ember_test::write_text(dir.file("t.csv"), csv_text);
    const std::string json = std::string(R"({"csv": "t.csv", "image_root": "img", "id_column": "id",
        "image_column": "file", "numeric_features": ["x"], "categorical_features": ["c"], "forbidden_columns": ["leak"],
        "drop_columns": ["note"], "targets": [{"name": "y", "task": "multiclass", "classes": ["u", "v", "w"]}],
        "duplicates": {"drop_if_nonempty": "dup"}, "skip_bad": )") + (skip_bad ? "true" : "false") + extra + "}";
    ember_test::write_text(dir.file("cfg.json"), json);
    return dir.file("cfg.json");
  }
};

TEST_F(DataDatasetTest, LoadsFeaturesTargetsAndDropsDuplicates) {
  Dataset ds = load_dataset(config("id,file,x,c,y,leak,note,dup\n"
                                   "r1,a.png,1.5,p,u,1,n,\n"
                                   "r2,b.png,NA,q,2,0,n,\n"
                                   "r3,c.png,,,v,0,n,r1\n"
                                   "r4,d.png,-2,p,w,1,n,\n",
                                   false));
  ASSERT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.dropped_duplicates, 1);
  EXPECT_EQ(ds.ids, (std::vector<std::string>{"r1", "r2", "r4"}));
  EXPECT_EQ(ds.targets[0], (std::vector<double>{0, 2, 2}));  // by class name or by index
  EXPECT_DOUBLE_EQ(ds.numeric[0][0], 1.5);
  EXPECT_TRUE(std::isnan(ds.numeric[0][1]));
  EXPECT_EQ(ds.lines, (std::vector<int64_t>{2, 3, 5}));
  EXPECT_EQ(ds.columns.count("leak"), 0u);  // forbidden columns are not even kept
  EXPECT_EQ(ds.columns.count("note"), 0u);
  EXPECT_THROW(ds.column("leak"), ember::Error);
  EXPECT_EQ(ds.index_of("r4"), 2);
  EXPECT_THAT(error_of([&] { ds.index_of("zz"); }), HasSubstr("zz"));
}

TEST_F(DataDatasetTest, BadRowsNameFileRowAndColumn) {
  const std::string header = "id,file,x,c,y,leak,note,dup\n";
  auto err = [&](const std::string& row) { return error_of([&] { load_dataset(config(header + row, false)); }); };
  std::string e = err("r1,a.png,1,p,u,0,n,\nr2,b.png,abc,p,u,0,n,\n");
  EXPECT_THAT(e, HasSubstr("t.csv"));
  EXPECT_THAT(e, HasSubstr("line 3"));
  EXPECT_THAT(e, HasSubstr("column 'x'"));
  EXPECT_THAT(e, HasSubstr("abc"));
  EXPECT_THAT(err("r1,a.png,1,p,7,0,n,\n"), HasSubstr("out of range"));
  EXPECT_THAT(err("r1,missing.png,1,p,u,0,n,\n"), HasSubstr("missing image file"));
  EXPECT_THAT(err("r1,empty.png,1,p,u,0,n,\n"), HasSubstr("zero-byte"));
  EXPECT_THAT(err("r1,../t.csv,1,p,u,0,n,\n"), HasSubstr("escapes"));
  EXPECT_THAT(err("r1,a.png,1,p,u,0,n,\nr1,b.png,1,p,u,0,n,\n"), HasSubstr("appears twice"));
}

TEST_F(DataDatasetTest, SkipBadCountsAndSkips) {
  Dataset ds = load_dataset(config("id,file,x,c,y,leak,note,dup\n"
                                   "r1,a.png,1,p,u,0,n,\n"
                                   "r2,b.png,abc,p,u,0,n,\n"
                                   "r3,missing.png,1,p,u,0,n,\n"
                                   "r4,empty.png,1,p,u,0,n,\n"
                                   "r5,c.png,1,p,9,0,n,\n"
                                   "r6,d.png,2,q,v,0,n,\n",
                                   true));
  EXPECT_EQ(ds.size(), 2);
  EXPECT_EQ(ds.skipped_bad, 4);
  EXPECT_EQ(ds.ids, (std::vector<std::string>{"r1", "r6"}));
  ASSERT_EQ(ds.bad_messages.size(), 4u);
  EXPECT_THAT(ds.bad_messages[0], HasSubstr("line 3"));
}

TEST_F(DataDatasetTest, FilenameLabelsMustAgreeWithTable) {
  Image img(4, 4, 3);
  write_image(dir.file("faces/30_1_2_2017.png"), img);
  write_image(dir.file("faces/31_0_2.png"), img);
  ember_test::write_text(dir.file("f.csv"), "file,age,gender\n30_1_2_2017.png,30,0\n");
  ember_test::write_text(dir.file("f.json"), R"({"csv": "f.csv", "image_root": "faces", "image_column": "file",
      "filename_pattern": {"pattern": "<age>_<gender>_<race>_<datetime>", "suffixes": [".png"]},
      "targets": [{"name": "gender", "task": "binary"}, {"name": "race", "task": "multiclass", "classes": ["a", "b", "c"]}]})");
  EXPECT_THAT(error_of([&] { load_dataset(dir.file("f.json")); }), HasSubstr("disagrees"));
  // Without a table the directory is listed; a broken name is skipped under skip_bad.
  ember_test::write_text(dir.file("g.json"), R"({"image_root": "faces", "skip_bad": true,
      "filename_pattern": {"pattern": "<age>_<gender>_<race>_<datetime>", "suffixes": [".png"]},
      "targets": [{"name": "age", "task": "regression"}, {"name": "gender", "task": "binary"}]})");
  Dataset ds = load_dataset(dir.file("g.json"));
  ASSERT_EQ(ds.size(), 1);
  EXPECT_EQ(ds.skipped_bad, 1);
  EXPECT_DOUBLE_EQ(ds.targets[0][0], 30);
  EXPECT_DOUBLE_EQ(ds.targets[1][0], 1);
  EXPECT_THAT(ds.bad_messages[0], HasSubstr("31_0_2.png"));
}
