// Checkpoint writes survive a crash: a child process trains and saves a LARGE checkpoint after
// every step, the parent SIGKILLs it while a save is in flight (a temporary file exists), and then
// the checkpoint on disk must (1) load, (2) be one consistent save, not a mix of two, and (3) resume
// into a run that is bit-identical to one that never stopped.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "engine/ops.h"
#include "engine/rng.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"

namespace fs = std::filesystem;
using namespace ember;

namespace {

constexpr int64_t kSamples = 32, kBatch = 8, kStepsPerEpoch = kSamples / kBatch;
constexpr int64_t kPadFloats = 4 << 20;  // 16 MB per save, so a kill lands mid-write

// A tiny MLP regression run with shuffling and SGD momentum: everything that carries state across
// steps is in here and goes into the checkpoint.
struct TrainingRun {
  std::map<std::string, Tensor> model;
  std::unique_ptr<Optimizer> opt;
  Generator shuffle{0};
  int64_t step = 0;

  explicit TrainingRun(uint64_t init_seed) {
    Generator init(init_seed);
    model["fc1.weight"] = Tensor::normal({8, 4}, 0, 0.5, init).requires_grad_();
    model["fc1.bias"] = Tensor::zeros({8}).requires_grad_();
    model["fc2.weight"] = Tensor::normal({1, 8}, 0, 0.5, init).requires_grad_();
    ParamGroup all{{model["fc1.weight"], model["fc1.bias"], model["fc2.weight"]}, 0.05, 0.0, "all"};
    opt = std::make_unique<SGD>(std::vector<ParamGroup>{all}, SGDOptions{0.9, 0.0, false});
    shuffle.set_state(7, 0);
  }
  // One step per call; the permutation is a pure function of (seed, epoch), so resuming needs only
  // the step count.
  void train_until(const Tensor& x, const Tensor& y, int64_t until) {
    for (; step < until; ++step) {
      Generator g(1000 + step / kStepsPerEpoch);
      const std::vector<int64_t> perm = g.permutation(kSamples);
      const int64_t first = (step % kStepsPerEpoch) * kBatch;
      Tensor xb = Tensor::empty({kBatch, 4}), yb = Tensor::empty({kBatch, 1});
      for (int64_t i = 0; i < kBatch; ++i) {
        xb.select(0, i).copy_(x.select(0, perm[first + i]));
        yb.select(0, i).copy_(y.select(0, perm[first + i]));
      }
      Tensor loss = mse_loss(linear(relu(linear(xb, model["fc1.weight"], model["fc1.bias"])), model["fc2.weight"], Tensor()), yb);
      opt->zero_grad();
      loss.backward();
      opt->step();
    }
  }
  Checkpoint save() const {
    Checkpoint ck;
    ck.model = model;
    ck.model["pad"] = Tensor::full({kPadFloats}, double(step));  // bulk that marks WHICH save this is
    ck.optimizer = opt->state_dict();
    ck.step = step;
    ck.epoch = step / kStepsPerEpoch;
    ck.generators["shuffle"] = GeneratorState::of(shuffle);
    return ck;
  }
  void load(const Checkpoint& ck) {
    NoGradGuard no_grad;
    for (auto& [name, p] : model) p.copy_(ck.model.at(name));
    opt->load_state_dict(ck.optimizer);
    ck.generators.at("shuffle").restore(shuffle);
    step = ck.step;
  }
};

std::pair<Tensor, Tensor> data() {
  Generator g(5);
  return {Tensor::normal({kSamples, 4}, 0, 1, g), Tensor::normal({kSamples, 1}, 0, 1, g)};
}

bool save_in_flight(const fs::path& dir, const std::string& final_name) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename() != final_name) return true;
  return false;
}

}  // namespace

TEST(CheckpointCrash, SigkillMidSaveKeepsPreviousCheckpointAndResumes) {
  std::string tmpl = (fs::temp_directory_path() / "ember_crash_XXXXXX").string();
  ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
  const fs::path dir = tmpl;
  const std::string name = "ck.safetensors", path = (dir / name).string();
  auto [x, y] = data();

  // Three kills at different points of a save: as soon as the temp file appears, and later.
  for (int delay_us : {0, 2000, 15000}) {
    SCOPED_TRACE("kill " + std::to_string(delay_us) + " us after a save started");
    fs::remove(path);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {  // the "training process": never returns into GoogleTest
      try {
        TrainingRun run(1);
        for (;;) {
          run.train_until(x, y, run.step + 1);
          save_checkpoint(path, run.save());
        }
      } catch (...) {
        _exit(3);
      }
    }
    // Wait for at least two completed saves, then for the next one to be in flight.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    bool ready = false;
    while (!ready && std::chrono::steady_clock::now() < deadline) {
      if (fs::exists(path)) {
        try {
          ready = load_checkpoint(path).step >= 2;
        } catch (const Error&) {
        }
      }
      if (!ready) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    bool in_flight = false;
    while (ready && !in_flight && std::chrono::steady_clock::now() < deadline) {
      in_flight = save_in_flight(dir, name);
      if (!in_flight) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    if (delay_us) std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
    kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(ready && in_flight) << "the child never got to a second save";
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "child exited on its own, status " << status;

    // (1) loads, (2) is one consistent save: the bulk marker matches the step in the metadata.
    Checkpoint ck;
    ASSERT_NO_THROW(ck = load_checkpoint(path));
    ASSERT_GE(ck.step, 2);
    const Tensor& pad = ck.model.at("pad");
    const float* p = pad.data<float>();
    int64_t wrong = 0;
    for (int64_t i = 0; i < pad.numel(); ++i) wrong += p[i] != float(ck.step);
    EXPECT_EQ(wrong, 0) << "checkpoint of step " << ck.step << " holds bytes of another save";

    // (3) resumes bit-identically to a run that never stopped.
    const int64_t until = ck.step + 5;
    TrainingRun straight(1);
    straight.train_until(x, y, until);
    TrainingRun resumed(999);
    resumed.load(ck);
    resumed.train_until(x, y, until);
    for (const auto& [k, t] : straight.model)
      EXPECT_EQ(std::memcmp(t.raw_data(), resumed.model.at(k).raw_data(), t.nbytes()), 0) << k << " differs after resume";
    // And the next save goes through despite the dead save's leftover temporary file.
    ASSERT_NO_THROW(save_checkpoint(path, resumed.save()));
    EXPECT_EQ(load_checkpoint(path).step, until);
  }
  fs::remove_all(dir);
}
