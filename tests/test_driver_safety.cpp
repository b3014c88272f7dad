// Training safety: a NaN or inf that reaches training (a poisoned embedding, a numeric column whose
// statistics overflow, a target, a gradient) must stop the run with a message naming the epoch, the batch and
// the first tensor where it appeared, instead of silently training on garbage.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "apps/driver/heads.h"
#include "apps/driver/sources.h"
#include "apps/driver/trainer.h"
#include "data/dataset.h"
#include "data/preprocess.h"
#include "engine/error.h"

namespace fs = std::filesystem;
using namespace ember;
using namespace ember::driver;

namespace {

constexpr int64_t kRows = 32, kWidth = 4, kBatch = 8;

std::vector<HeadSpec> binary_head() {
  HeadSpec h;
  h.target = "y";
  h.task = data::Task::Binary;
  h.classes = {"a", "b"};
  return {h};
}

Tensor clean_features(uint64_t seed) {
  Generator g(seed);
  return Tensor::normal({kRows, kWidth}, 0, 1, g);
}

Tensor labels() {
  std::vector<int64_t> y(kRows);
  for (int64_t i = 0; i < kRows; ++i) y[i] = i % 2;
  return Tensor::from_vector(y, {kRows});
}

std::vector<int64_t> all_rows() {
  std::vector<int64_t> r(kRows);
  std::iota(r.begin(), r.end(), 0);
  return r;
}

TrainConfig short_run(int64_t epochs) {
  TrainConfig c;
  c.epochs = epochs;
  c.batch_size = kBatch;
  c.patience = 0;
  c.schedule = "none";
  return c;
}

// Trains a small head on `features` and returns the error message ("" when training finished).
std::string train_message(BatchSource& train, int64_t epochs) {
  Generator gen(3);
  HeadsModel model(nullptr, kWidth, binary_head(), {8}, 0.0, gen);
  TensorSource val({clean_features(9)}, {labels()}, all_rows(), kBatch, false, 1);
  FitOptions opt;
  opt.name = "safety";
  try {
    fit(model, binary_head(), train, val, short_run(epochs), opt);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// A clean source that poisons ONE element of one batch in one epoch (0-based), as a corrupted
// embedding cache or a flaky decoder would.
class PoisonAt : public BatchSource {
 public:
  PoisonAt(int64_t epoch, int64_t batch, float value)
      : inner_({clean_features(5)}, {labels()}, all_rows(), kBatch, false, 1), epoch_(epoch), batch_(batch), value_(value) {}
  void start_epoch(int64_t epoch) override {
    current_epoch_ = epoch;
    current_batch_ = 0;
    inner_.start_epoch(epoch);
  }
  bool next(TrainBatch& out) override {
    if (!inner_.next(out)) return false;
    if (current_epoch_ == epoch_ && current_batch_ == batch_) {
      Tensor x = out.inputs[0].clone();
      x.data<float>()[kWidth + 1] = value_;  // row 1 of the batch, feature 1
      out.inputs[0] = x;
    }
    ++current_batch_;
    return true;
  }
  int64_t num_batches() const override { return inner_.num_batches(); }
  int64_t size() const override { return inner_.size(); }

 private:
  TensorSource inner_;
  int64_t epoch_, batch_, current_epoch_ = 0, current_batch_ = 0;
  float value_;
};

void expect_contains(const std::string& msg, const std::string& part) {
  EXPECT_NE(msg.find(part), std::string::npos) << "message '" << msg << "' lacks '" << part << "'";
}

}  // namespace

TEST(DriverSafety, CleanDataTrains) {  // the control: the poisoned tests fail for the poison only
  TensorSource train({clean_features(5)}, {labels()}, all_rows(), kBatch, false, 1);
  EXPECT_EQ(train_message(train, 2), "");
}

TEST(DriverSafety, PoisonedEmbeddingRowStopsAtItsBatch) {
  Tensor emb = clean_features(5);
  emb.data<float>()[13 * kWidth + 2] = NAN;  // row 13 -> batch 2 (rows 8..15), no shuffling
  TensorSource train({emb}, {labels()}, all_rows(), kBatch, false, 1);
  const std::string msg = train_message(train, 3);
  expect_contains(msg, "training safety stopped");
  expect_contains(msg, "epoch 1, batch 2");
  expect_contains(msg, "input 0");
}

// +inf in a later epoch: through Linear it can turn into -inf, ReLU then zeroes it and the loss
// stays finite, so checking only the loss is not enough; the message must still name the input.
TEST(DriverSafety, InfInALaterEpochNamesEpochBatchAndInput) {
  for (float poison : {INFINITY, -INFINITY, NAN}) {
    PoisonAt train(/*epoch=*/1, /*batch=*/2, poison);
    const std::string msg = train_message(train, 3);
    SCOPED_TRACE(poison);
    expect_contains(msg, "epoch 2, batch 3");
    expect_contains(msg, "the batch is not finite");  // blamed on the data, before any forward pass
    expect_contains(msg, "input 0");
  }
}

TEST(DriverSafety, InfTargetIsNamed) {
  HeadSpec reg;
  reg.target = "age";
  reg.task = data::Task::Regression;
  std::vector<float> t(kRows, 0.5f);
  t[20] = INFINITY;  // batch 3
  TensorSource train({clean_features(5)}, {Tensor::from_vector(t, {kRows})}, all_rows(), kBatch, false, 1);
  TensorSource val({clean_features(9)}, {Tensor::from_vector(std::vector<float>(kRows, 0.5f), {kRows})}, all_rows(),
                   kBatch, false, 1);
  Generator gen(3);
  HeadsModel model(nullptr, kWidth, {reg}, {8}, 0.0, gen);
  FitOptions opt;
  opt.name = "safety";
  try {
    fit(model, {reg}, train, val, short_run(2), opt);
    FAIL() << "training on an inf target finished";
  } catch (const Error& e) {
    expect_contains(e.what(), "epoch 1, batch 3");
    expect_contains(e.what(), "target 0");
  }
}

// A poisoned ROW in a real dataset: the data layer refuses "inf" outright, but a finite value near
// DBL_MAX passes parsing; two of them overflow the standardisation statistics, so every feature
// value turns non-finite. Training must stop at the first batch naming the input tensor.
TEST(DriverSafety, PoisonedCsvRowStopsTraining) {
  const fs::path dir = fs::temp_directory_path() / ("ember_safety_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ofstream csv(dir / "labels.csv");
    csv << "id,x,y\n";
    for (int i = 0; i < kRows; ++i) csv << i << ',' << (i == 3 || i == 4 ? "1.5e308" : std::to_string(i * 0.1)) << ','
                                        << (i % 2 ? "b" : "a") << '\n';
    std::ofstream cfg(dir / "dataset.json");
    cfg << R"({"name": "poisoned", "root": ".", "csv": "labels.csv", "id_column": "id", "numeric_features": ["x"],
               "targets": [{"name": "y", "task": "binary", "classes": ["a", "b"]}]})";
  }
  auto ds = data::load_dataset((dir / "dataset.json").string());
  ASSERT_EQ(ds.size(), kRows);
  data::TabularPreprocessor pre;
  std::string msg;
  try {
    pre.fit(ds, all_rows());
    Tensor x = pre.transform(ds, all_rows());
    const int64_t width = x.shape()[1];
    Generator gen(3);
    HeadsModel model(nullptr, width, binary_head(), {8}, 0.0, gen);
    TensorSource train({x}, {labels()}, all_rows(), kBatch, false, 1);
    TensorSource val({x}, {labels()}, all_rows(), kBatch, false, 1);
    FitOptions opt;
    opt.name = "safety";
    fit(model, binary_head(), train, val, short_run(2), opt);
  } catch (const Error& e) {
    msg = e.what();
  }
  fs::remove_all(dir);
  // Either the preprocessor refuses the column by name, or training stops at the first batch.
  const bool refused_column = msg.find("'x'") != std::string::npos;
  const bool stopped = msg.find("epoch 1, batch 1") != std::string::npos && msg.find("input 0") != std::string::npos;
  EXPECT_TRUE(refused_column || stopped) << "message: '" << msg << "'";
}

// A gradient that turns NaN while the loss stays finite (sqrt'(0) * 0 inside the model): the step's
// one-number screen must notice it and training must stop naming the epoch, batch and parameter.
class NanGradientModel : public nn::Module {
 public:
  NanGradientModel() : nn::Module("NanGradientModel") {
    Generator gen(4);
    w_ = Tensor::normal({kWidth, 2}, 0, 0.1, gen);
    trap_ = Tensor::ones({1});
    register_parameter("w", &w_);
    register_parameter("trap", &trap_);
  }
  Tensor forward(const Tensor& x) override { return matmul(x, w_) + sqrt(trap_ - trap_) * 0.0; }

 private:
  Tensor w_, trap_;
};

TEST(DriverSafety, NonFiniteGradientWithFiniteLossNamesTheParameter) {
  NanGradientModel model;
  TensorSource train({clean_features(5)}, {labels()}, all_rows(), kBatch, false, 1);
  TensorSource val({clean_features(9)}, {labels()}, all_rows(), kBatch, false, 1);
  FitOptions opt;
  opt.name = "safety";
  std::string msg;
  try {
    fit(model, binary_head(), train, val, short_run(1), opt);
  } catch (const Error& e) {
    msg = e.what();
  }
  expect_contains(msg, "gradient is not finite at epoch 1, batch 1");
  expect_contains(msg, "first at parameter");
  expect_contains(msg, "trap");
}
