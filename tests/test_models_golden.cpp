// ember's VGG16 / VGG16-BN against PyTorch: tools/golden/make_vgg_golden.py builds torchvision's
// layout with seeded weights and saves its eval-mode output; tools/convert/torchvision_vgg.py
// turns the .pth into safetensors; ember loads it strictly and must reproduce the output.
// Skips (with a message) where no Python with torch is available.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "gradcheck.h"
#include "nn/models/vgg.h"
#include "nn/safetensors.h"

using namespace ember;
namespace fs = std::filesystem;

namespace {

// Debian's /usr/bin/python3 has torch; a pyenv python3 earlier on PATH may not. EMBER_PYTHON wins.
std::string python_with(const std::string& module) {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("EMBER_PYTHON")) candidates.push_back(env);
  candidates.insert(candidates.end(), {"python3", "/usr/bin/python3"});
  for (const auto& py : candidates)
    if (std::system((py + " -c 'import " + module + "' >/dev/null 2>&1").c_str()) == 0) return py;
  return "";
}

int run(const std::string& cmd) {
  std::printf("$ %s\n", cmd.c_str());
  std::fflush(stdout);
  return std::system(cmd.c_str());
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("ember_vgg_golden_" + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

void check_against_torch(bool bn, int64_t hidden) {
  const std::string py = python_with("torch");
  if (py.empty()) GTEST_SKIP() << "no python3 with torch (set EMBER_PYTHON): skipping the PyTorch golden comparison";
  const std::string src = EMBER_SOURCE_DIR;
  TempDir tmp;
  const std::string stem = bn ? "vgg16_bn" : "vgg16";
  const std::string dir = tmp.path.string();
  ASSERT_EQ(run(py + " " + src + "/tools/golden/make_vgg_golden.py " + dir + (bn ? " --bn" : "") + " --size 32 --seed 3" +
                " --hidden " + std::to_string(hidden)),
            0);
  ASSERT_EQ(run(py + " " + src + "/tools/convert/torchvision_vgg.py " + dir + "/" + stem + ".pth " + dir + "/" + stem +
                ".safetensors"),
            0);
  auto weights = load_safetensors(dir + "/" + stem + ".safetensors");
  auto golden = load_safetensors(dir + "/" + stem + "_golden.safetensors");
  ASSERT_TRUE(golden.count("input") && golden.count("output"));

  // The layers' default init is overwritten by the load; skip torchvision's second init pass.
  nn::VGG16 model({.num_classes = 1000, .batch_norm = bn, .classifier_hidden = hidden, .torchvision_init = false});
  nn::LoadReport report = model.load_state_dict(weights, /*strict=*/true);
  EXPECT_EQ(report.loaded, int64_t(weights.size()));
  model.eval();
  Tensor x = golden.at("input"), want = golden.at("output");
  ASSERT_EQ(x.shape(), (Shape{2, 3, 32, 32}));
  Tensor got = model(x);
  ASSERT_EQ(got.shape(), want.shape());
  const double err = ember::testing::rel_error(got, want);
  std::printf("%s (classifier width %lld) vs PyTorch: relative error %.3g\n", stem.c_str(), (long long)hidden, err);
  EXPECT_LE(err, 1e-5);
  // Same predicted class too (a cheap sanity line next to the tolerance).
  Tensor am_got = argmax(got, 1), am_want = argmax(want, 1);
  EXPECT_EQ(am_got.to_vector<int64_t>(), am_want.to_vector<int64_t>());
}

}  // namespace

TEST(ModelsGolden, Vgg16MatchesPytorch) { check_against_torch(false, 4096); }

// A narrower classifier keeps the files small (85 MB instead of 553 MB); the conv stack, where
// BN lives, is full size.
TEST(ModelsGolden, Vgg16BnMatchesPytorch) { check_against_torch(true, 256); }

TEST(ModelsGolden, WrongArchitectureIsRejectedByStrictLoad) {
  const std::string py = python_with("torch");
  if (py.empty()) GTEST_SKIP() << "no python3 with torch (set EMBER_PYTHON)";
  const std::string src = EMBER_SOURCE_DIR;
  TempDir tmp;
  const std::string dir = tmp.path.string();
  ASSERT_EQ(run(py + " " + src + "/tools/golden/make_vgg_golden.py " + dir + " --bn --hidden 64"), 0);
  ASSERT_EQ(run(py + " " + src + "/tools/convert/torchvision_vgg.py " + dir + "/vgg16_bn.pth " + dir + "/w.safetensors"), 0);
  auto weights = load_safetensors(dir + "/w.safetensors");
  nn::VGG16 plain({.classifier_hidden = 64, .torchvision_init = false});  // no BN: indices shift
  try {
    plain.load_state_dict(weights, true);
    FAIL() << "loading VGG16-BN weights into VGG16 must fail";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("unexpected key: features.1.running_mean"), std::string::npos) << msg;
    EXPECT_NE(msg.find("missing key: features.2.weight"), std::string::npos) << msg;
    EXPECT_NE(msg.find("shape mismatch for features.7.weight: model expects [128, 128, 3, 3], state_dict has [128, 64, 3, 3]"),
              std::string::npos)
        << msg;
  }
}
