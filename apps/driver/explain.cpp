// `ember explain`: builds the batch (through the loader's own image pipeline), the model and the
// optimizer, then runs one forward, backward and update while the tracers in explain_trace.cpp watch.
#include "apps/driver/explain.h"

#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "apps/driver/experiment.h"
#include "apps/driver/explain_trace.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/synthetic.h"
#include "data/transforms.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/ops.h"
#include "engine/storage.h"
#include "kernels/registry.h"
#include "nn/models/mlp.h"
#include "nn/models/small_cnn.h"
#include "nn/models/vgg.h"
#include "nn/optim.h"

namespace ember::driver {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

DataStage stats_u8(const std::string& name, const std::string& detail, const data::Image& img, double ms) {
  DataStage s{name, detail, {img.h, img.w, img.c}, 255, 0, 0, ms};
  double sum = 0;
  for (uint8_t v : img.px) {
    s.min = std::min<double>(s.min, v);
    s.max = std::max<double>(s.max, v);
    sum += v;
  }
  s.mean = img.px.empty() ? 0 : sum / double(img.px.size());
  return s;
}

DataStage stats_f32(const std::string& name, const std::string& detail, const Shape& shape, const float* v,
                    int64_t n, double ms) {
  DataStage s{name, detail, shape, n ? v[0] : 0, n ? v[0] : 0, 0, ms};
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    s.min = std::min<double>(s.min, v[i]);
    s.max = std::max<double>(s.max, v[i]);
    sum += v[i];
  }
  s.mean = n ? sum / double(n) : 0;
  return s;
}

struct Batch {
  Tensor images, labels;
  int64_t num_classes = 2;
};

// Decodes, resizes and normalises the first `batch` rows exactly as the DataLoader does (decode ->
// data::to_stored -> data::stored_to_tensor, evaluation mode: no augmentation), narrating row 0.
Batch load_batch(const data::Dataset& ds, const ExplainOptions& o, std::vector<DataStage>& stages) {
  EMBER_CHECK(ds.has_images(), "explain: dataset '", ds.config.name, "' (", ds.table_path(), ") has no images");
  EMBER_CHECK(ds.size() >= o.batch, "explain: dataset '", ds.config.name, "' has ", ds.size(), " rows, batch is ",
              o.batch);
  const data::TargetSpec* target = nullptr;
  for (const auto& t : ds.config.targets)
    if (t.is_classification() && !target) target = &t;
  EMBER_CHECK(target, "explain: dataset '", ds.config.name, "' (", ds.config.config_path,
              ") has no classification target to compute a loss with");
  data::ImagePipeline p;
  p.out_h = p.out_w = o.image_size;
  p.normalization = data::parse_normalization(o.normalization);
  const int64_t S = o.image_size, plane = 3 * S * S;
  Batch b;
  b.images = Tensor::empty({o.batch, 3, S, S});
  b.num_classes = std::max<int64_t>(2, target->num_classes());
  std::vector<int64_t> all = ds.class_labels(target->name), labels(all.begin(), all.begin() + o.batch);
  b.labels = Tensor::from_vector(labels, {o.batch});
  for (int64_t i = 0; i < o.batch; ++i) {
    const std::string& path = ds.image_paths[size_t(i)];
    auto t0 = Clock::now();
    data::Image decoded = data::decode_image(path, ds.config.max_pixels);
    const double decode_ms = ms_since(t0);
    t0 = Clock::now();
    data::Image stored = data::to_stored(decoded, p);
    const double resize_ms = ms_since(t0);
    t0 = Clock::now();
    float* dst = b.images.data<float>() + i * plane;
    data::stored_to_tensor(stored, p, /*train=*/false, o.seed, 0, i, dst);
    const double norm_ms = ms_since(t0);
    if (i != 0) continue;
    stages.push_back({"file", path + " (" + std::to_string(fs::file_size(path)) + " bytes on disk)", {}, 0, 0, 0, 0});
    stages.push_back(stats_u8("decoded", "stb_image -> uint8 HWC", decoded, decode_ms));
    const bool shrink = decoded.h > S && decoded.w > S;
    stages.push_back(stats_u8("resized", shrink ? "area average (shrinking)" : "bilinear (enlarging)", stored, resize_ms));
    stages.push_back(stats_f32("normalised", "CHW float32, " + o.normalization, {3, S, S}, dst, plane, norm_ms));
  }
  stages.push_back(stats_f32("batch", "label '" + target->name + "' (" + std::to_string(b.num_classes) + " classes)",
                             b.images.shape(), b.images.data<float>(), b.images.numel(), 0));
  return b;
}

nn::ModulePtr make_model(const ExplainOptions& o, int64_t num_classes, Generator& gen) {
  const int64_t S = o.image_size;
  if (o.model == "mlp") {
    auto seq = std::make_shared<nn::Sequential>();
    seq->add("flatten", std::make_shared<nn::Flatten>());
    nn::MLPConfig c{.in_features = 3 * S * S, .hidden = {128, 64}, .out_features = num_classes};
    seq->add("mlp", std::make_shared<nn::MLP>(c, gen));
    return seq;
  }
  if (o.model == "cnn") {
    nn::SmallCNNConfig c;
    c.channels = o.channels;
    c.convs_per_block = o.convs_per_block;
    c.fuse_bn_relu = o.fuse_bn_relu;
    c.num_classes = num_classes;
    return std::make_shared<nn::SmallCNN>(c, gen);
  }
  if (o.model == "vgg16") {
    nn::VGGConfig c;
    c.num_classes = num_classes;
    c.torchvision_init = false;  // PyTorch layer defaults: one pass over the 138M weights, not two
    return std::make_shared<nn::VGG16>(c, gen);
  }
  throw Error("explain: unknown --model '" + o.model + "' (expected mlp, cnn or vgg16)");
}

std::unique_ptr<Optimizer> make_optimizer(const ExplainOptions& o, std::vector<Tensor> params) {
  std::vector<ParamGroup> groups{{std::move(params), o.lr, 0.0, "all"}};
  if (o.optimizer == "sgd") return std::make_unique<SGD>(groups, SGDOptions{0.9, 0.0, false});
  if (o.optimizer == "adam") return std::make_unique<Adam>(groups);
  if (o.optimizer == "adamw") return std::make_unique<AdamW>(groups);
  throw Error("explain: unknown --optimizer '" + o.optimizer + "' (expected sgd, adam or adamw)");
}

double l2(const Tensor& t) {
  Tensor c = t.to(Device::CPU).contiguous().to(DType::Float64);
  const double* v = c.data<double>();
  double s = 0;
  for (int64_t i = 0; i < c.numel(); ++i) s += v[i] * v[i];
  return std::sqrt(s);
}

// The dataset: the config given, or a small synthetic one written where the options say (or into a
// temporary directory that is removed when the run ends).
struct DataDir {
  std::string dir, config;
  bool remove = false;
  ~DataDir() {
    std::error_code ec;
    if (remove) fs::remove_all(dir, ec);
  }
};

void prepare_data(const ExplainOptions& o, DataDir& d) {
  if (!o.dataset.empty()) {
    d.config = o.dataset;
    return;
  }
  d.dir = o.work_dir;
  if (d.dir.empty()) {
    d.dir = (fs::temp_directory_path() / ("ember-explain-" + std::to_string(::getpid()))).string();
    d.remove = true;
  }
  data::SyntheticOptions so;
  so.rows = std::max<int64_t>(16, o.batch);
  so.image_size = 48;  // stored larger than the default input, so the resize step has work to do
  so.seed = o.seed;
  so.duplicates = 0;
  d.config = data::write_synthetic_dataset(d.dir, so).config_path;
}

}  // namespace

ExplainResult run_explain(const ExplainOptions& o) {
  EMBER_CHECK(o.batch >= 1 && o.image_size >= 8, "explain: --batch (", o.batch, ") must be >= 1 and --image-size (",
              o.image_size, ") >= 8");
  EMBER_CHECK(o.model != "cnn" || o.batch >= 2 || o.forward_only,
              "explain: --model cnn uses BatchNorm, whose training statistics need --batch >= 2");
  ExplainResult r;
  r.options = o;
  r.isa = kernels::isa_name(kernels::cpu_isa());
  DataDir dir;
  prepare_data(o, dir);
  r.dataset_dir = dir.config;
  data::LoadOptions lo;
  lo.check_images = false;  // only the batch's images are read, and decoding checks them anyway
  data::Dataset ds = data::load_dataset(dir.config, "", lo);
  Batch batch = load_batch(ds, o, r.data);
  if (o.num_classes > 0) {
    EMBER_CHECK(o.num_classes >= batch.num_classes, "explain: --num-classes ", o.num_classes, " is fewer than the ",
                batch.num_classes, " classes of the dataset's target");
    batch.num_classes = o.num_classes;
  }
  r.num_classes = batch.num_classes;

  check_device_name(o.device, "explain: --device");
  const Device device = o.device == "cuda" ? Device::CUDA : Device::CPU;
  if (device == Device::CUDA) require_cuda("explain --device cuda");
  batch.images = batch.images.to(device);
  batch.labels = batch.labels.to(device);
  Generator gen(o.seed + 1);
  nn::ModulePtr model = make_model(o, batch.num_classes, gen);
  model->to(device);  // initialised on the CPU (the same weights as a CPU run), then moved
  r.model_name = model->type_name();
  if (!o.freeze.empty()) model->freeze(o.freeze);
  model->train();
  r.num_parameters = model->num_parameters();
  r.trainable_parameters = model->num_trainable_parameters();

  // One untimed warm-up forward (eval mode: running statistics and dropout untouched; no graph), so
  // op times are steady-state, not first-call page faults and scratch-buffer allocation.
  if (o.warmup) {
    NoGradGuard no_grad;
    model->eval();
    (*model)(batch.images);
    model->train();
  }
  synchronize_device_of(device);  // the warm-up's GPU kernels must not be charged to the first traced op
  Tensor logits, loss;
  r.forward = trace_forward([&] { logits = (*model)(batch.images); }, leaf_module_names(*model));
  auto loss_ops = trace_forward([&] { loss = cross_entropy(logits, batch.labels); });
  for (auto& f : loss_ops) {
    f.index = int64_t(r.forward.size());
    f.layer = "(loss)";
    r.forward.push_back(std::move(f));
  }
  r.loss = loss.item();
  for (const auto& f : r.forward) {
    r.totals.forward_macs += f.cost.macs;
    r.totals.forward_flops += f.cost.flops;
    r.totals.forward_bytes += f.cost.bytes;
    r.totals.forward_ms += f.ms;
  }

  if (!o.forward_only) {
    std::map<const void*, std::string> param_names;
    std::vector<std::pair<std::string, Tensor>> trainable;
    for (auto& [name, p] : model->named_parameters()) {
      param_names[p.impl_ptr().get()] = name;
      if (p.requires_grad()) trainable.push_back({name, p});
    }
    r.backward = trace_backward(loss, r.forward, param_names);
    for (const auto& s : r.backward) {
      r.totals.backward_flops += s.flops;
      r.totals.backward_ms += s.ms;
    }
    std::vector<Tensor> params;
    std::vector<Tensor> before;
    for (auto& [_, p] : trainable) {
      params.push_back(p);
      before.push_back(p.detach().clone());
    }
    auto opt = make_optimizer(o, params);
    synchronize_device_of(device);
    const auto t0 = Clock::now();
    opt->step();
    synchronize_device_of(device);
    r.totals.optimizer_ms = ms_since(t0);
    for (size_t i = 0; i < trainable.size(); ++i) {
      const Tensor& p = trainable[i].second;
      ParamUpdate u{trainable[i].first, p.shape(), 0, 0, 0, o.lr};
      if (p.grad().defined()) u.grad_norm = l2(p.grad());
      u.step_norm = l2(sub(p.detach(), before[i]));
      u.weight_norm = l2(before[i]);
      r.updates.push_back(std::move(u));
    }
  }

  if (o.peak_gflops > 0) {
    r.totals.peak_gflops = o.peak_gflops;
    r.totals.peak_source = "given by --peak-gflops";
  } else if (device == Device::CUDA) {  // the CPU's FMA loop says nothing about the GPU
    r.totals.peak_gflops = 0;
    r.totals.peak_source = "unknown for the GPU: pass --peak-gflops (e.g. the precision's dense TFLOP/s x 1000)";
  } else {
    r.totals.peak_gflops = measure_peak_gflops();
    r.totals.peak_source = "measured now: AVX2 FMA register loop on " + std::to_string(omp_get_max_threads()) +
                           " OpenMP thread(s), best of 10, as bench/bench_peak.h";
  }
  return r;
}

int cmd_explain(const ExplainOptions& options) {
  ExplainResult r = run_explain(options);
  if (options.json)
    std::printf("%s\n", explain_json(r).dump(2).c_str());
  else
    print_explain(r, stdout);
  return 0;
}

}  // namespace ember::driver
