// The experiment driver end to end on a small synthetic dataset: every milestone reports on the
// same test rows, the split is disjoint and grouped, and a CPU run is reproducible.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "apps/driver/run.h"
#include "engine/storage.h"
#include "data/csv.h"

namespace fs = std::filesystem;
using namespace ember::driver;

namespace {

ExperimentConfig small_experiment() {
  auto j = nlohmann::json::parse(default_experiment_json());
  j["synthetic_rows"] = 160;
  for (const char* m : {"m1", "m2", "m3", "m4"}) j[m]["train"]["epochs"] = 2;
  j["m2"]["channels"] = {4, 8};
  return parse_experiment(j);
}

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("ember_e2e_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d;
}

std::vector<std::string> column(const fs::path& csv, const std::string& name) {
  auto t = ember::data::read_csv(csv.string());
  std::vector<std::string> out;
  for (auto& r : t.rows) out.push_back(r[size_t(t.column(name))]);
  return out;
}

}  // namespace

TEST(DriverE2E, AllMilestonesOnOneSplitAndReproducible) {
  RunOptions o;
  o.quiet = true;
  o.out_dir = temp_dir("a").string();
  Report a = run_experiment(small_experiment(), o);

  std::set<std::string> ids;
  for (auto& r : a.results) ids.insert(r.id);
  for (const char* want : {"M1", "M2", "M2-multitask", "M3", "M4-early", "M4-late"}) EXPECT_TRUE(ids.count(want)) << want;
  EXPECT_EQ(a.results.size(), 12u) << "6 models x 2 targets (label, age)";

  // The split: every id once, in one set; groups (patients) never straddle sets.
  auto split_ids = column(fs::path(o.out_dir) / "split.csv", "id");
  EXPECT_EQ(std::set<std::string>(split_ids.begin(), split_ids.end()).size(), split_ids.size());

  // Every model predicted exactly the same test rows.
  std::vector<std::string> first;
  for (auto& f : fs::directory_iterator(fs::path(o.out_dir) / "predictions")) {
    auto test_ids = column(f.path(), "id");
    std::sort(test_ids.begin(), test_ids.end());
    if (first.empty()) first = test_ids;
    EXPECT_EQ(test_ids, first) << f.path();
  }
  EXPECT_FALSE(first.empty());
  for (const char* f : {"report.html", "summary.md", "results.json", "metrics.csv", "experiment.json"})
    EXPECT_TRUE(fs::exists(fs::path(o.out_dir) / f)) << f;

  // Same seed, same machine, same thread count: identical test metrics.
  RunOptions o2 = o;
  o2.out_dir = temp_dir("b").string();
  Report b = run_experiment(small_experiment(), o2);
  ASSERT_EQ(a.results.size(), b.results.size());
  for (size_t i = 0; i < a.results.size(); ++i) EXPECT_EQ(a.results[i].test.dump(), b.results[i].test.dump()) << a.results[i].id;
  fs::remove_all(o.out_dir);
  fs::remove_all(o2.out_dir);
}

TEST(DriverE2E, ConfigErrorsNameTheKey) {
  auto j = nlohmann::json::parse(default_experiment_json());
  j["m2"]["train"]["epoch"] = 3;  // typo
  try {
    parse_experiment(j);
    FAIL() << "unknown key accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("m2.train: unknown key 'epoch'"), std::string::npos) << e.what();
  }
  j = nlohmann::json::parse(default_experiment_json());
  j["split"] = {{"train", 0.8}, {"val", 0.1}, {"test", 0.2}};
  EXPECT_THROW(parse_experiment(j), std::exception);
  // Enumerated values are checked at load time, naming the key and the value.
  auto message = [](const nlohmann::json& bad) {
    try {
      parse_experiment(bad);
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  j = nlohmann::json::parse(default_experiment_json());
  j["regression_loss"] = "huber";
  EXPECT_NE(message(j).find("regression_loss 'huber' is not one of mse, l1, smooth_l1"), std::string::npos) << message(j);
  j = nlohmann::json::parse(default_experiment_json());
  j["m2"]["convs_per_block"] = 0;
  EXPECT_NE(message(j).find("m2: convs_per_block 0 must be between 1 and 8"), std::string::npos) << message(j);
  j["m2"]["convs_per_block"] = 2;
  j["regression_loss"] = "l1";
  EXPECT_EQ(parse_experiment(j).m2.convs_per_block, 2);
  EXPECT_EQ(parse_experiment(j).regression_loss, "l1");
  j["device"] = "gpu";
  EXPECT_NE(message(j).find("experiment.device: 'gpu' is not one of cpu, cuda"), std::string::npos) << message(j);
}

// "device": "cuda" without a usable device stops before any work, saying so (CI, and any CPU build).
TEST(DriverE2E, CudaDeviceWithoutOneStopsAtTheStart) {
  if (ember::cuda_backend() != nullptr) GTEST_SKIP() << "a CUDA device is present: CudaRunMatchesCpuRun covers it";
  auto j = nlohmann::json::parse(default_experiment_json());
  j["device"] = "cuda";
  RunOptions o;
  o.quiet = true;
  o.out_dir = temp_dir("nodevice").string();
  try {
    run_experiment(parse_experiment(j), o);
    FAIL() << "a cuda run without a device started";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("experiment device 'cuda': CUDA is not available"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(fs::path(o.out_dir) / "split.csv")) << "work started before the device check";
  fs::remove_all(o.out_dir);
}

// With a device: M1 (MLP) and M2 (CNN with fused BN+ReLU, dropout, pooling) trained on the GPU give the
// CPU run's test metrics, up to float summation order (the same seeds, Philox dropout masks and
// batches; fp32 GEMMs and convolutions). Written in a session without a GPU: not yet run.
TEST(DriverE2E, CudaRunMatchesCpuRun) {
  if (ember::cuda_backend() == nullptr) GTEST_SKIP() << "no CUDA device (or a build without EMBER_CUDA)";
  Report r[2];
  for (int d = 0; d < 2; ++d) {
    auto j = nlohmann::json::parse(default_experiment_json());
    j["synthetic_rows"] = 160;
    for (const char* m : {"m1", "m2"}) j[m]["train"]["epochs"] = 2;
    j["m2"]["channels"] = {4, 8};
    j["m2"]["multitask"] = nlohmann::json::array();
    j["m3"]["enabled"] = false;
    j["m4"]["enabled"] = false;
    j["device"] = d == 0 ? "cpu" : "cuda";
    RunOptions o;
    o.quiet = true;
    o.out_dir = temp_dir(d == 0 ? "cpu" : "cuda").string();
    r[d] = run_experiment(parse_experiment(j), o);
    fs::remove_all(o.out_dir);
  }
  ASSERT_EQ(r[0].results.size(), r[1].results.size());
  ASSERT_FALSE(r[0].results.empty());
  for (size_t i = 0; i < r[0].results.size(); ++i) {
    const auto& want = r[0].results[i];
    const auto& got = r[1].results[i];
    ASSERT_EQ(got.id, want.id);
    for (const auto& [key, value] : want.test.items()) {  // accuracy, roc_auc, mae, ... of the test set
      if (!value.is_number()) continue;
      ASSERT_TRUE(got.test.contains(key)) << want.id << " " << want.target << ": no " << key << " on cuda";
      const double a = value.get<double>(), b = got.test.at(key).get<double>();
      EXPECT_NEAR(b, a, 1e-3 * std::max(1.0, std::abs(a))) << want.id << " " << want.target << " " << key;
    }
  }
  EXPECT_EQ(r[1].info.at("device"), "cuda");
}
