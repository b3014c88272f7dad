// Checkpoints: resuming a run must be bit-identical to never stopping; a damaged checkpoint must
// fail to load with a clear error; an interrupted save must leave the previous checkpoint intact.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/ops.h"
#include "engine/rng.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "nn/schedule.h"

namespace fs = std::filesystem;
using namespace ember;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    path = (fs::temp_directory_path() / "ember_ckpt_XXXXXX").string();
    EXPECT_NE(mkdtemp(path.data()), nullptr);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
int count_files(const std::string& dir) {
  int n = 0;
  for (const auto& e : fs::directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

constexpr int64_t kSamples = 48, kBatch = 12, kStepsPerEpoch = kSamples / kBatch;

// A tiny two-layer MLP regression run: shuffled minibatches, dropout, gradient clipping, a
// warm-up + cosine schedule and an optimizer. Everything that carries state across steps lives
// here, so "fresh objects" really are fresh.
struct TrainingRun {
  std::map<std::string, Tensor> model;  // fc1.weight, fc1.bias, fc2.weight, fc2.bias
  std::unique_ptr<Optimizer> opt;
  Generator shuffle{0}, drop{0};
  GeneratorState shuffle_at_epoch_start;  // the permutation of the current epoch is redrawn on resume
  std::vector<int64_t> perm;
  int64_t step = 0;
  std::shared_ptr<LRSchedule> schedule =
      std::make_shared<WarmupSchedule>(std::make_shared<CosineSchedule>(0.05, 20, 0.001), 3, 0.2);

  TrainingRun(const std::string& kind, uint64_t init_seed) {
    Generator init(init_seed);
    model["fc1.weight"] = Tensor::normal({16, 6}, 0, 0.4, init).requires_grad_();
    model["fc1.bias"] = Tensor::normal({16}, 0, 0.1, init).requires_grad_();
    model["fc2.weight"] = Tensor::normal({3, 16}, 0, 0.3, init).requires_grad_();
    model["fc2.bias"] = Tensor::zeros({3}).requires_grad_();
    ParamGroup weights{{model["fc1.weight"], model["fc2.weight"]}, 0.05, 0.01, "weights"};
    ParamGroup biases{{model["fc1.bias"], model["fc2.bias"]}, 0.05, 0.0, "biases"};
    if (kind == "sgd") opt = std::make_unique<SGD>(std::vector<ParamGroup>{weights, biases}, SGDOptions{0.9, 0.0, true});
    else opt = std::make_unique<AdamW>(std::vector<ParamGroup>{weights, biases});
  }
  void seed_generators() {
    shuffle.set_state(11, 0);
    drop.set_state(22, 0);
  }

  void train(const Tensor& x, const Tensor& y, int64_t until) {
    for (; step < until; ++step) {
      if (step % kStepsPerEpoch == 0 || perm.empty()) {
        if (step % kStepsPerEpoch == 0) shuffle_at_epoch_start = GeneratorState::of(shuffle);
        shuffle_at_epoch_start.restore(shuffle);
        perm = shuffle.permutation(kSamples);
      }
      const int64_t first = (step % kStepsPerEpoch) * kBatch;
      Tensor xb = Tensor::empty({kBatch, x.size(1)}), yb = Tensor::empty({kBatch, y.size(1)});
      for (int64_t i = 0; i < kBatch; ++i) {
        xb.select(0, i).copy_(x.select(0, perm[first + i]));
        yb.select(0, i).copy_(y.select(0, perm[first + i]));
      }
      Tensor h = relu(linear(xb, model["fc1.weight"], model["fc1.bias"]));
      h = dropout(h, 0.25, /*training=*/true, drop);
      Tensor loss = mse_loss(linear(h, model["fc2.weight"], model["fc2.bias"]), yb);
      opt->zero_grad();
      loss.backward();
      std::vector<Tensor> params;
      for (auto& [name, p] : model) params.push_back(p);
      clip_grad_norm_(params, 0.5);
      schedule->apply(*opt, step);
      opt->step();
    }
  }

  Checkpoint save() const {
    Checkpoint ck;
    ck.model = model;
    ck.optimizer = opt->state_dict();
    ck.epoch = step / kStepsPerEpoch;
    ck.step = step;
    ck.generators["shuffle"] = shuffle_at_epoch_start;
    ck.generators["dropout"] = GeneratorState::of(drop);
    ck.config = R"({"model": "mlp", "hidden": 16, "lr": 0.05})";
    return ck;
  }
  void load(const Checkpoint& ck) {
    NoGradGuard no_grad;
    for (auto& [name, p] : model) p.copy_(ck.model.at(name));
    opt->load_state_dict(ck.optimizer);
    ck.generators.at("shuffle").restore(shuffle);
    shuffle_at_epoch_start = ck.generators.at("shuffle");
    ck.generators.at("dropout").restore(drop);
    step = ck.step;
    perm.clear();  // redrawn from the epoch-start state by train()
  }
};

void expect_bitwise_equal(const TrainingRun& a, const TrainingRun& b) {
  for (const auto& [name, p] : a.model) {
    const Tensor& q = b.model.at(name);
    ASSERT_EQ(p.nbytes(), q.nbytes());
    EXPECT_EQ(std::memcmp(p.raw_data(), q.raw_data(), p.nbytes()), 0) << name << " differs after resume";
  }
  EXPECT_EQ(GeneratorState::of(a.drop), GeneratorState::of(b.drop));
  EXPECT_EQ(GeneratorState::of(a.shuffle), GeneratorState::of(b.shuffle));
}

}  // namespace

class ResumeTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ResumeTest, ResumeIsBitIdentical) {
  TempDir dir;
  Generator data_gen(5);
  Tensor x = Tensor::normal({kSamples, 6}, 0, 1, data_gen), y = Tensor::normal({kSamples, 3}, 0, 1, data_gen);
  const int64_t total = 14, half = total / 2;  // half = 7: the save happens mid-epoch

  TrainingRun straight(GetParam(), 1);
  straight.seed_generators();
  const Tensor w0 = straight.model["fc1.weight"].detach().clone();
  straight.train(x, y, total);

  TrainingRun first(GetParam(), 1);
  first.seed_generators();
  first.train(x, y, half);
  save_checkpoint(dir / "ck.safetensors", first.save());

  TrainingRun resumed(GetParam(), 999);  // different init and unseeded generators: everything must come from the file
  Checkpoint ck = load_checkpoint(dir / "ck.safetensors");
  EXPECT_EQ(ck.step, half);
  EXPECT_EQ(ck.epoch, half / kStepsPerEpoch);
  EXPECT_EQ(nlohmann::json::parse(ck.config)["hidden"], 16);
  resumed.load(ck);
  resumed.train(x, y, total);

  expect_bitwise_equal(straight, resumed);
  // Not vacuous: training moved the weights, and the learning-rate group state came back too.
  EXPECT_NE(std::memcmp(w0.raw_data(), straight.model["fc1.weight"].raw_data(), w0.nbytes()), 0);
  EXPECT_EQ(resumed.opt->lr(0), straight.opt->lr(0));
}
INSTANTIATE_TEST_SUITE_P(Optimizers, ResumeTest, ::testing::Values("adamw", "sgd"));

TEST(Checkpoint, RoundTripsEveryField) {
  TempDir dir;
  Checkpoint ck;
  ck.model["w"] = Tensor::arange(6, DType::Float64).view({2, 3});
  ck.model["labels"] = Tensor::from_vector(std::vector<int64_t>{3, 1}, {2});
  ck.optimizer.tensors["0.0.exp_avg"] = Tensor::ones({2, 3});
  ck.optimizer.scalars = {{"kind", "adam"}, {"groups", nlohmann::json::array()}};
  ck.epoch = 3;
  ck.step = 1234567890123;
  ck.generators["a"] = {UINT64_MAX, 17};
  ck.generators["b"] = {0, UINT64_MAX - 1};
  ck.config = R"({"x": [1, 2.5, "s"]})";
  ck.user["git"] = "abc123";
  save_checkpoint(dir / "c", ck);
  Checkpoint back = load_checkpoint(dir / "c");
  EXPECT_EQ(back.model.size(), 2u);
  EXPECT_EQ(back.model.at("w").to_vector<double>(), ck.model["w"].to_vector<double>());
  EXPECT_EQ(back.model.at("labels").to_vector<int64_t>(), (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(back.optimizer.tensors.size(), 1u);
  EXPECT_EQ(back.optimizer.scalars, ck.optimizer.scalars);
  EXPECT_EQ(back.epoch, 3);
  EXPECT_EQ(back.step, 1234567890123);
  EXPECT_EQ(back.generators, ck.generators);
  EXPECT_EQ(back.config, ck.config);
  EXPECT_EQ(back.user, ck.user);

  ck.config = "{not json";
  EXPECT_THROW(save_checkpoint(dir / "bad", ck), Error);
  EXPECT_FALSE(fs::exists(dir / "bad"));
}

TEST(Checkpoint, DamagedFilesFailWithClearErrors) {
  TempDir dir;
  Checkpoint ck;
  ck.model["w"] = Tensor::ones({64});
  ck.step = 5;
  save_checkpoint(dir / "ok", ck);
  const std::string raw = read_bytes(dir / "ok");
  for (size_t len : {size_t(0), size_t(4), size_t(8), size_t(40), raw.size() / 2, raw.size() - 1}) {
    { std::ofstream(dir / "cut", std::ios::binary).write(raw.data(), std::streamsize(len)); }
    try {
      load_checkpoint(dir / "cut");
      ADD_FAILURE() << "truncated to " << len << " loaded";
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find("checkpoint '" + (dir / "cut") + "'"), std::string::npos) << msg;
      EXPECT_NE(msg.find("truncated or corrupt"), std::string::npos) << msg;
    }
  }
  save_safetensors(dir / "weights", {{"w", Tensor::ones({2})}});
  try {
    load_checkpoint(dir / "weights");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not an ember checkpoint"), std::string::npos) << e.what();
  }
}

// A save that dies half-way (here: the file-size limit makes write() fail with EFBIG, which even
// root cannot bypass) must leave the previous checkpoint byte-for-byte intact and no temp file.
TEST(Checkpoint, InterruptedSaveKeepsPreviousFile) {
  TempDir dir;
  Checkpoint old_ck;
  old_ck.model["w"] = Tensor::ones({8});
  old_ck.step = 1;
  save_checkpoint(dir / "ck", old_ck);
  const std::string before = read_bytes(dir / "ck");

  Checkpoint big = old_ck;
  big.model["w"] = Tensor::zeros({1 << 16});
  big.step = 2;
  struct rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string error;
  try {
    save_checkpoint(dir / "ck", big);
  } catch (const Error& e) {
    error = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  signal(SIGXFSZ, old_handler);

  EXPECT_NE(error.find("writing temporary file"), std::string::npos) << "save did not fail: '" << error << "'";
  EXPECT_EQ(read_bytes(dir / "ck"), before);
  EXPECT_EQ(load_checkpoint(dir / "ck").step, 1);
  EXPECT_EQ(count_files(dir.path), 1) << "temporary file left behind";
  save_checkpoint(dir / "ck", big);  // and with the limit lifted it goes through
  EXPECT_EQ(load_checkpoint(dir / "ck").step, 2);
}
