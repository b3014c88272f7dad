// Optimizers, schedules and gradient clipping against PyTorch (python3-torch, run at test time).
// The C++ side draws parameters and gradients, writes them to a safetensors file, a Python script
// replays them through torch.optim and writes its results back; both sides must agree within
// 1e-6 relative in float64. Tests skip (with a message) when no python3 with torch is found.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "engine/rng.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "nn/schedule.h"

namespace fs = std::filesystem;
using namespace ember;
using json = nlohmann::json;

namespace {

constexpr int kSteps = 6;
const std::vector<Shape> kShapes = {{3, 4}, {5}, {2, 3}};

struct TempDir {
  std::string path;
  TempDir() {
    path = (fs::temp_directory_path() / "ember_optim_XXXXXX").string();
    EXPECT_NE(mkdtemp(path.data()), nullptr);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& name) const { return path + "/" + name; }
};

std::string python_with_torch() {
  const char* env = std::getenv("EMBER_PYTHON");
  for (std::string py : {env ? std::string(env) : std::string(), std::string("python3"), std::string("/usr/bin/python3")}) {
    if (py.empty()) continue;
    if (std::system((py + " -c 'import torch, numpy' >/dev/null 2>&1").c_str()) == 0) return py;
  }
  return "";
}

// The torch side: reads "in.safetensors" (tensors + a JSON job in metadata), writes "out.safetensors".
const char* kTorchScript = R"PY(
import json, math, struct, sys, warnings
import numpy as np, torch
warnings.filterwarnings("ignore")

def load(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n]); buf = raw[8 + n:]
    meta = header.pop("__metadata__", {})
    out = {}
    for k, v in header.items():
        assert v["dtype"] == "F64", k
        b, e = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(buf[b:e], dtype="<f8").reshape(v["shape"]).copy())
    return out, meta

def save(path, tensors, meta):
    header, chunks, off = {"__metadata__": meta}, [], 0
    for k in sorted(tensors):
        data = tensors[k].detach().numpy().astype("<f8").tobytes()
        header[k] = {"dtype": "F64", "shape": list(tensors[k].shape), "data_offsets": [off, off + len(data)]}
        chunks.append(data); off += len(data)
    text = json.dumps(header).encode(); text += b" " * (-len(text) % 8)
    open(path, "wb").write(struct.pack("<Q", len(text)) + text + b"".join(chunks))

t, meta = load(sys.argv[1])
job = json.loads(meta["job"])
out, out_meta = {}, {}
for case in job["optim_cases"]:
    params = [t["param.%d" % i].clone().requires_grad_(True) for i in range(job["num_params"])]
    groups = [{"params": [params[i] for i in g["params"]], "lr": g["lr"], "weight_decay": g["weight_decay"]}
              for g in case["groups"]]
    cls = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[case["opt"]]
    opt = cls(groups, **case["kwargs"])
    for s in range(job["steps"]):
        for i, p in enumerate(params):
            key = "grad.%d.%d" % (s, i)
            p.grad = t[key].clone() if key in t else None
        opt.step()
    for i, p in enumerate(params):
        out["%s.param.%d" % (case["name"], i)] = p.detach()

sched = job["schedule"]
def lrs(make):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=sched["base_lr"])
    s = make(opt); values = []
    for _ in range(sched["steps"]):
        values.append(opt.param_groups[0]["lr"]); opt.step(); s.step()
    return values
L = torch.optim.lr_scheduler
out_meta["step"] = json.dumps(lrs(lambda o: L.StepLR(o, step_size=3, gamma=0.5)))
out_meta["cosine"] = json.dumps(lrs(lambda o: L.CosineAnnealingLR(o, T_max=10, eta_min=0.001)))
out_meta["warmup"] = json.dumps(lrs(lambda o: L.SequentialLR(o, [L.LinearLR(o, start_factor=0.1, end_factor=1.0, total_iters=4),
                                                                 L.CosineAnnealingLR(o, T_max=10, eta_min=0.001)], milestones=[4])))
norms = []
for c in job["clip_cases"]:
    grads = [t["clip.%d" % i].clone() for i in range(job["num_params"])]
    ps = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, g in zip(ps, grads): p.grad = g
    norm_type = float("inf") if c["norm_type"] == "inf" else c["norm_type"]
    norms.append(float(torch.nn.utils.clip_grad_norm_(ps, c["max_norm"], norm_type)))
    for i, p in enumerate(ps): out["clip%d.%d" % (len(norms) - 1, i)] = p.grad
out_meta["clip_norms"] = json.dumps(norms)
save(sys.argv[2], out, out_meta)
print("torch-done")
)PY";

struct OptimCase {
  std::string name, opt;
  json kwargs;
  std::vector<std::pair<std::vector<int>, std::pair<double, double>>> groups;  // params, (lr, wd)
};

const std::vector<OptimCase>& optim_cases() {
  static const std::vector<OptimCase> cases = {
      {"sgd_plain", "sgd", json::object(), {{{0, 1, 2}, {0.1, 0.0}}}},
      {"sgd_momentum_wd", "sgd", {{"momentum", 0.9}}, {{{0, 1}, {0.1, 0.01}}, {{2}, {0.05, 0.0}}}},
      {"sgd_dampening", "sgd", {{"momentum", 0.8}, {"dampening", 0.3}, {"weight_decay", 0.0}}, {{{0, 1, 2}, {0.07, 0.02}}}},
      {"sgd_nesterov", "sgd", {{"momentum", 0.9}, {"nesterov", true}}, {{{0, 2}, {0.03, 0.05}}, {{1}, {0.2, 0.0}}}},
      {"adam", "adam", {{"betas", {0.9, 0.999}}, {"eps", 1e-8}}, {{{0, 1, 2}, {0.01, 0.0}}}},
      {"adam_l2", "adam", {{"betas", {0.8, 0.95}}, {"eps", 1e-6}}, {{{0, 1}, {0.02, 0.1}}, {{2}, {0.005, 0.0}}}},
      {"adam_amsgrad", "adam", {{"amsgrad", true}}, {{{0, 1, 2}, {0.01, 0.01}}}},
      {"adamw", "adamw", {{"betas", {0.9, 0.99}}, {"eps", 1e-8}}, {{{0, 1}, {0.01, 0.1}}, {{2}, {0.02, 0.0}}}},
  };
  return cases;
}

// Which gradients exist: parameter 1 has none at steps 0 and 3 (it must be skipped, state untouched).
bool has_grad(int step, int param) { return !(param == 1 && (step == 0 || step == 3)); }

std::unique_ptr<Optimizer> make_optimizer(const OptimCase& c, const std::vector<Tensor>& params) {
  std::vector<ParamGroup> groups;
  for (const auto& [idx, hp] : c.groups) {
    ParamGroup g;
    for (int i : idx) g.params.push_back(params[i]);
    g.lr = hp.first;
    g.weight_decay = hp.second;
    groups.push_back(g);
  }
  const json& k = c.kwargs;
  if (c.opt == "sgd")
    return std::make_unique<SGD>(groups, SGDOptions{k.value("momentum", 0.0), k.value("dampening", 0.0), k.value("nesterov", false)});
  AdamOptions o;
  if (k.contains("betas")) o.beta1 = k["betas"][0], o.beta2 = k["betas"][1];
  o.eps = k.value("eps", 1e-8);
  o.amsgrad = k.value("amsgrad", false);
  if (c.opt == "adam") return std::make_unique<Adam>(groups, o);
  return std::make_unique<AdamW>(groups, o);
}

void expect_close(const Tensor& got, const Tensor& want, const std::string& what, double rel = 1e-6) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  auto g = got.to_vector<double>(), w = want.to_vector<double>();
  for (size_t i = 0; i < g.size(); ++i)
    EXPECT_LE(std::abs(g[i] - w[i]), rel * std::abs(w[i]) + 1e-12) << what << "[" << i << "]: " << g[i] << " vs " << w[i];
}

struct Inputs {
  std::map<std::string, Tensor> tensors;
  std::vector<Tensor> params() const {
    std::vector<Tensor> p;
    for (size_t i = 0; i < kShapes.size(); ++i) p.push_back(tensors.at("param." + std::to_string(i)).clone());
    return p;
  }
};

Inputs make_inputs() {
  Generator gen(1234);
  Inputs in;
  for (size_t i = 0; i < kShapes.size(); ++i) {
    in.tensors["param." + std::to_string(i)] = Tensor::normal(kShapes[i], 0, 1, gen, DType::Float64);
    in.tensors["clip." + std::to_string(i)] = Tensor::normal(kShapes[i], 0, 2, gen, DType::Float64);
    for (int s = 0; s < kSteps; ++s)
      if (has_grad(s, int(i)))
        in.tensors["grad." + std::to_string(s) + "." + std::to_string(i)] = Tensor::normal(kShapes[i], 0, 1, gen, DType::Float64);
  }
  return in;
}

void run_steps(Optimizer& opt, std::vector<Tensor>& params, const Inputs& in, int from, int to) {
  for (int s = from; s < to; ++s) {
    for (size_t i = 0; i < params.size(); ++i) {
      auto it = in.tensors.find("grad." + std::to_string(s) + "." + std::to_string(i));
      if (it == in.tensors.end()) params[i].zero_grad();
      else params[i].set_grad(it->second.clone());
    }
    opt.step();
  }
}

const std::vector<std::pair<double, json>> kClipCases = {{1.0, 2.0}, {100.0, 2.0}, {0.5, "inf"}, {2.0, 1.0}, {0.7, 3.0}};

// Runs the torch script once per process and caches its output.
struct TorchReference {
  bool available = false;
  std::string skip_reason;
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> meta;
};
const TorchReference& torch_reference() {
  static TorchReference ref = [] {
    TorchReference r;
    std::string py = python_with_torch();
    if (py.empty()) {
      r.skip_reason = "python3 with torch+numpy not found (set EMBER_PYTHON)";
      return r;
    }
    static TempDir dir;
    json job = {{"steps", kSteps}, {"num_params", kShapes.size()}, {"optim_cases", json::array()},
                {"clip_cases", json::array()}, {"schedule", {{"base_lr", 0.1}, {"steps", 25}}}};
    for (const auto& c : optim_cases()) {
      json groups = json::array();
      for (const auto& [idx, hp] : c.groups) groups.push_back({{"params", idx}, {"lr", hp.first}, {"weight_decay", hp.second}});
      job["optim_cases"].push_back({{"name", c.name}, {"opt", c.opt}, {"kwargs", c.kwargs}, {"groups", groups}});
    }
    for (const auto& [max_norm, type] : kClipCases) job["clip_cases"].push_back({{"max_norm", max_norm}, {"norm_type", type}});
    save_safetensors(dir / "in.safetensors", make_inputs().tensors, {{"job", job.dump()}});
    std::ofstream(dir / "ref.py") << kTorchScript;
    std::string cmd = py + " " + (dir / "ref.py") + " " + (dir / "in.safetensors") + " " + (dir / "out.safetensors") + " 2>&1";
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    char buf[4096];
    size_t n;
    while (p && (n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    int rc = p ? pclose(p) : -1;
    EXPECT_EQ(rc, 0) << out;
    if (rc != 0) {
      r.skip_reason = "torch script failed: " + out;
      return r;
    }
    r.tensors = load_safetensors(dir / "out.safetensors", &r.meta);
    r.available = true;
    return r;
  }();
  return ref;
}

}  // namespace

TEST(Optim, MatchesTorchOptimizers) {
  const auto& ref = torch_reference();
  if (!ref.available) GTEST_SKIP() << ref.skip_reason;
  Inputs in = make_inputs();
  for (const auto& c : optim_cases()) {
    std::vector<Tensor> params = in.params();
    auto opt = make_optimizer(c, params);
    run_steps(*opt, params, in, 0, kSteps);
    for (size_t i = 0; i < params.size(); ++i)
      expect_close(params[i], ref.tensors.at(c.name + ".param." + std::to_string(i)), c.name + " param " + std::to_string(i));
  }
}

TEST(Optim, ResumeFromStateDictIsBitIdentical) {
  Inputs in = make_inputs();
  for (const auto& c : optim_cases()) {
    std::vector<Tensor> straight = in.params();
    auto a = make_optimizer(c, straight);
    run_steps(*a, straight, in, 0, kSteps);

    std::vector<Tensor> first = in.params();
    auto b = make_optimizer(c, first);
    run_steps(*b, first, in, 0, kSteps / 2);
    OptimizerState st = b->state_dict();
    std::vector<Tensor> resumed;
    for (auto& p : first) resumed.push_back(p.detach().clone());
    auto fresh = make_optimizer(c, resumed);
    fresh->set_lr(123.0);  // must be overwritten by the loaded state
    fresh->load_state_dict(st);
    run_steps(*fresh, resumed, in, kSteps / 2, kSteps);
    for (size_t i = 0; i < straight.size(); ++i)
      EXPECT_EQ(std::memcmp(straight[i].raw_data(), resumed[i].raw_data(), straight[i].nbytes()), 0) << c.name << " " << i;
  }
}

TEST(Optim, LoadStateDictRejectsMismatches) {
  Inputs in = make_inputs();
  std::vector<Tensor> params = in.params();
  Adam adam({{params, 0.01, 0.0, "all"}});
  run_steps(adam, params, in, 0, 2);
  OptimizerState st = adam.state_dict();
  SGD sgd({{params, 0.01, 0.0, "all"}});
  EXPECT_THROW(sgd.load_state_dict(st), Error);
  std::vector<Tensor> other = {Tensor::zeros({3, 4}, DType::Float64), Tensor::zeros({6}, DType::Float64),
                               Tensor::zeros({2, 3}, DType::Float64)};
  Adam wrong_shape({{other, 0.01, 0.0, "all"}});
  try {
    wrong_shape.load_state_dict(st);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("param 1"), std::string::npos) << e.what();
  }
  OptimizerState missing = st;
  missing.tensors.erase("0.0.exp_avg");
  EXPECT_THROW(Adam({{params, 0.01, 0.0, "all"}}).load_state_dict(missing), Error);
  OptimizerState malformed = st;
  malformed.scalars["groups"][0].erase("lr");
  EXPECT_THROW(Adam({{params, 0.01, 0.0, "all"}}).load_state_dict(malformed), Error);
}

TEST(Optim, SchedulesMatchTorch) {
  const auto& ref = torch_reference();
  if (!ref.available) GTEST_SKIP() << ref.skip_reason;
  auto cosine = std::make_shared<CosineSchedule>(0.1, 10, 0.001);
  StepSchedule step(0.1, 3, 0.5);
  WarmupSchedule warm(cosine, 4, 0.1);
  const std::vector<std::pair<std::string, const LRSchedule*>> cases = {{"step", &step}, {"cosine", cosine.get()}, {"warmup", &warm}};
  for (const auto& [name, sched] : cases) {
    auto want = json::parse(ref.meta.at(name)).get<std::vector<double>>();
    ASSERT_EQ(want.size(), 25u);
    for (size_t t = 0; t < want.size(); ++t)
      EXPECT_NEAR(sched->lr(int64_t(t)), want[t], 1e-6 * std::abs(want[t]) + 1e-15) << name << " t=" << t;
  }
  SGD opt({{{Tensor::zeros({1})}, 1.0, 0.0, "g"}});
  warm.apply(opt, 2);
  EXPECT_DOUBLE_EQ(opt.lr(), warm.lr(2));
}

TEST(Optim, ClipGradNormMatchesTorch) {
  const auto& ref = torch_reference();
  if (!ref.available) GTEST_SKIP() << ref.skip_reason;
  Inputs in = make_inputs();
  auto norms = json::parse(ref.meta.at("clip_norms")).get<std::vector<double>>();
  ASSERT_EQ(norms.size(), kClipCases.size());
  for (size_t c = 0; c < kClipCases.size(); ++c) {
    std::vector<Tensor> params;
    for (size_t i = 0; i < kShapes.size(); ++i) {
      params.push_back(Tensor::zeros(kShapes[i], DType::Float64));
      params.back().set_grad(in.tensors.at("clip." + std::to_string(i)).clone());
    }
    const auto& [max_norm, type] = kClipCases[c];
    double norm_type = type.is_string() ? INFINITY : type.get<double>();
    double total = clip_grad_norm_(params, max_norm, norm_type);
    EXPECT_NEAR(total, norms[c], 1e-6 * norms[c]) << "case " << c;
    for (size_t i = 0; i < params.size(); ++i)
      expect_close(params[i].grad(), ref.tensors.at("clip" + std::to_string(c) + "." + std::to_string(i)),
                   "clip case " + std::to_string(c) + " grad " + std::to_string(i));
  }
}

TEST(Optim, ClipGradNormEdgeCases) {
  std::vector<Tensor> none = {Tensor::zeros({3})};
  EXPECT_EQ(clip_grad_norm_(none, 1.0), 0.0);  // no gradients at all
  Tensor p = Tensor::zeros({2});
  p.set_grad(Tensor::from_vector({3.0f, NAN}, {2}));
  EXPECT_THROW(clip_grad_norm_({p}, 1.0, 2.0, /*error_if_nonfinite=*/true), Error);
}

TEST(Optim, SkipsParametersWithoutGradAndRejectsMismatchedGrad) {
  Tensor a = Tensor::ones({2}), b = Tensor::ones({2});
  Adam opt({{{a, b}, 0.1, 0.0, "g"}});
  a.set_grad(Tensor::ones({2}));
  opt.step();
  EXPECT_NE(a.to_vector<float>()[0], 1.0f);
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{1.0f, 1.0f}));
  EXPECT_EQ(opt.state_dict().scalars["groups"][0]["params"][1]["step"], 0);
  b.set_grad(Tensor::ones({3}));
  EXPECT_THROW(opt.step(), Error);
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
}
