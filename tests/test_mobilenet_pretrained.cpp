// The real ImageNet-pretrained MobileNet-v1 (TFLite, uint8) from ../shared, converted by
// tools/convert/tflite_mobilenet.py, loaded into nn::MobileNetV1 with folded BN and TF 'SAME'
// padding. Checks: the three reference images get their known top-1 labels, and ember's logits
// match the numpy reference forward (tools/convert/mobilenet_reference.py --golden), which top-1
// alone cannot do (symmetric padding also gets the labels right).
// Skips with a message when ../shared or a Python with numpy is absent.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

// stb's decoder, private to this test (static functions: no clash with any other copy linked in).
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_BMP
#include <stb/stb_image.h>

#include "engine/ops.h"
#include "gradcheck.h"
#include "nn/models/mobilenet.h"
#include "nn/safetensors.h"

using namespace ember;
namespace fs = std::filesystem;

namespace {

const std::string kModelDir = std::string(EMBER_SOURCE_DIR) + "/../shared/models/mobilenet_v1_224_quant";

std::string python_with(const std::string& module) {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("EMBER_PYTHON")) candidates.push_back(env);
  candidates.insert(candidates.end(), {"python3", "/usr/bin/python3"});
  for (const auto& py : candidates)
    if (std::system((py + " -c 'import " + module + "' >/dev/null 2>&1").c_str()) == 0) return py;
  return "";
}

// Half-pixel-centre bilinear weights along one axis, as mobilenet_reference.py computes them:
// src = (dst + 0.5) * in / out - 0.5 clamped to [0, in - 1]; no antialiasing.
struct Taps {
  std::vector<int64_t> lo, hi;
  std::vector<float> frac;
};
Taps bilinear_taps(int64_t in, int64_t out) {
  Taps t;
  for (int64_t d = 0; d < out; ++d) {
    double src = (double(d) + 0.5) * (double(in) / double(out)) - 0.5;
    src = std::min(std::max(src, 0.0), double(in - 1));
    const int64_t lo = int64_t(std::floor(src));
    t.lo.push_back(lo);
    t.hi.push_back(std::min(lo + 1, in - 1));
    t.frac.push_back(float(src - double(lo)));
  }
  return t;
}

// BMP -> RGB -> 224x224 bilinear -> (p - zero_point) * scale, as [1, 3, 224, 224] float32.
Tensor preprocess(const std::string& path, double scale, double zero_point) {
  int w = 0, h = 0, channels = 0;
  unsigned char* pixels = stbi_load(path.c_str(), &w, &h, &channels, 3);
  if (!pixels) throw Error(path + ": cannot decode BMP: " + stbi_failure_reason());
  const int64_t S = 224;
  Taps ty = bilinear_taps(h, S), tx = bilinear_taps(w, S);
  Tensor x = Tensor::empty({1, 3, S, S});
  float* out = x.data<float>();
  auto px = [&](int64_t y, int64_t xx, int c) { return float(pixels[(y * w + xx) * 3 + c]); };
  for (int c = 0; c < 3; ++c)
    for (int64_t i = 0; i < S; ++i)
      for (int64_t j = 0; j < S; ++j) {
        const float fx = tx.frac[j], fy = ty.frac[i];
        const float top = px(ty.lo[i], tx.lo[j], c) * (1 - fx) + px(ty.lo[i], tx.hi[j], c) * fx;
        const float bot = px(ty.hi[i], tx.lo[j], c) * (1 - fx) + px(ty.hi[i], tx.hi[j], c) * fx;
        const float v = top * (1 - fy) + bot * fy;
        out[(c * S + i) * S + j] = float((v - zero_point) * scale);
      }
  stbi_image_free(pixels);
  return x;
}

std::vector<std::string> read_labels(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> labels;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    labels.push_back(line);
  }
  return labels;
}

}  // namespace

TEST(MobileNetPretrained, TopOneLabelsAndLogitsMatchReference) {
  if (!fs::exists(kModelDir)) GTEST_SKIP() << kModelDir << " is absent: skipping the pretrained MobileNet check";
  const std::string py = python_with("numpy");
  if (py.empty()) GTEST_SKIP() << "no python3 with numpy (set EMBER_PYTHON): cannot run the converter";
  const fs::path tmp = fs::temp_directory_path() / ("ember_mobilenet_" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{tmp};
  const std::string src = EMBER_SOURCE_DIR, weights_path = (tmp / "mobilenet.safetensors").string(),
                    golden_path = (tmp / "golden.safetensors").string();
  ASSERT_EQ(std::system((py + " " + src + "/tools/convert/tflite_mobilenet.py " + kModelDir + " " + weights_path).c_str()), 0);

  std::map<std::string, std::string> meta;
  auto weights = load_safetensors(weights_path, &meta);
  ASSERT_TRUE(meta.count("input_quantization")) << "converter metadata lacks input_quantization";
  auto quant = nlohmann::json::parse(meta.at("input_quantization"));
  const double scale = quant.at("scale").get<double>(), zero_point = quant.at("zero_point").get<double>();

  nn::MobileNetV1 model({.num_classes = 1001, .folded_bn = true});
  EXPECT_EQ(model.load_state_dict(weights, /*strict=*/true).loaded, 2 * 27 + 2);
  model.eval();
  NoGradGuard no_grad;

  const auto labels = read_labels(kModelDir + "/imagenet_labels.txt");
  ASSERT_EQ(labels.size(), 1001u);
  const std::vector<std::pair<std::string, std::string>> expected = {
      {"cat", "Egyptian cat"}, {"bird", "chickadee"}, {"grace_hopper", "military uniform"}};
  std::map<std::string, Tensor> inputs, logits;
  for (const auto& [stem, label] : expected) {
    Tensor x = preprocess(kModelDir + "/" + stem + ".bmp", scale, zero_point);
    Tensor y = model(x);
    ASSERT_EQ(y.shape(), (Shape{1, 1001}));
    Tensor p = softmax(y, 1);
    const int64_t top = argmax(y, 1).to_vector<int64_t>()[0];
    std::printf("%-13s top-1 %4lld %-20s p=%.3f\n", stem.c_str(), (long long)top, labels[top].c_str(), p.at({0, top}));
    EXPECT_EQ(labels[top], label) << stem << ".bmp";
    inputs[stem] = x;
    logits[stem] = y;
  }

  // Numeric check against the numpy reference (same weights, same preprocessing).
  if (std::system((py + " " + src + "/tools/convert/mobilenet_reference.py " + weights_path + " " + kModelDir +
                   " --golden " + golden_path + " >/dev/null")
                      .c_str()) != 0) {
    ADD_FAILURE() << "mobilenet_reference.py failed";
    return;
  }
  auto golden = load_safetensors(golden_path);
  for (const auto& [stem, _] : expected) {
    const double in_err = ember::testing::rel_error(inputs[stem], golden.at(stem + ".input"));
    const double emb_err = ember::testing::rel_error(model.embed(golden.at(stem + ".input")), golden.at(stem + ".embedding"));
    const double logit_err = ember::testing::rel_error(logits[stem], golden.at(stem + ".logits"));
    std::printf("%-13s vs numpy reference: input %.2g, embedding %.2g, logits %.2g (relative)\n", stem.c_str(), in_err,
                emb_err, logit_err);
    EXPECT_LT(in_err, 1e-6) << stem << ": preprocessing differs from mobilenet_reference.py";
    EXPECT_LT(emb_err, 1e-4) << stem;
    EXPECT_LT(logit_err, 1e-4) << stem;
  }
}
