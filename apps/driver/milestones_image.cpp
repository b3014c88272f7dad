// M2 (a CNN trained from scratch on the images, one model per target and one multitask model) and
// M3 (a frozen backbone -> cached embeddings -> a classifier trained on the embeddings only, with
// optional fine-tuning of the backbone's last blocks at a lower learning rate).
#include <filesystem>

#include "apps/driver/progress.h"
#include "apps/driver/run.h"
#include "nn/models/mobilenet.h"
#include "nn/models/small_cnn.h"
#include "nn/safetensors.h"

namespace ember::driver {
namespace {

data::LoaderOptions loader_options(const RunContext& ctx, const data::ImagePipeline& p, int64_t batch, bool train) {
  data::LoaderOptions o;
  o.batch_size = batch;
  o.shuffle = train;
  o.train = train;
  o.num_workers = ctx.cfg.workers;
  o.seed = ctx.cfg.seed;
  o.image = p;
  return o;
}

data::ImagePipeline augmented(const RunContext& ctx, bool augment) {
  data::ImagePipeline p = ctx.pipeline;
  if (augment) {
    p.hflip = true;
    p.rotate_degrees = 10;
    p.brightness = 0.2f;
    p.contrast = 0.2f;
  }
  return p;
}

std::shared_ptr<nn::SmallCNN> make_trunk(const RunContext& ctx, Generator& gen) {
  nn::SmallCNNConfig c;
  c.channels = ctx.cfg.m2.channels;
  c.batch_norm = true;
  c.num_classes = 1;  // the trunk's own classifier is unused: heads sit on embed()
  return std::make_shared<nn::SmallCNN>(c, gen);
}

// Trains a CNN with one head per spec on the images and reports every head.
nn::ModulePtr train_cnn(RunContext& ctx, const std::string& id, const std::string& title,
                        const std::vector<HeadSpec>& heads) {
  const auto& mc = ctx.cfg.m2;
  Generator gen(ctx.cfg.seed + 22);
  auto trunk = make_trunk(ctx, gen);
  HeadsModel model(trunk, trunk->embedding_width(), heads, mc.hidden, mc.dropout, gen);
  auto p_train = augmented(ctx, mc.augment);
  const int64_t bs = mc.train.batch_size;
  ImageSource train(ctx.ds, ctx.split.train, nullptr, loader_options(ctx, p_train, bs, true), ctx.cache, heads);
  ImageSource val(ctx.ds, ctx.split.val, nullptr, loader_options(ctx, ctx.pipeline, bs, false), ctx.cache, heads);
  ImageSource test(ctx.ds, ctx.split.test, nullptr, loader_options(ctx, ctx.pipeline, bs, false), ctx.cache, heads);
  FitOptions fo;
  fo.name = id + " " + heads[0].target + (heads.size() > 1 ? "+" : "");
  fo.run_dir = ctx.run_dir;
  fo.seed = ctx.cfg.seed;
  FitResult fr = fit(model, heads, train, val, mc.train, fo);
  Predictions pred = predict(model, heads, test, fo.name + " test");
  for (size_t h = 0; h < heads.size(); ++h)
    ctx.add_result(evaluate_head(id, title, heads[h], pred, h, ctx.ds, ctx.groups), pred, h, &fr, model.num_parameters());
  return trunk;
}

}  // namespace

void run_m2(RunContext& ctx) {
  EMBER_CHECK(ctx.ds.has_images(), "M2: dataset ", ctx.ds.config.name, " has no images");
  for (const auto& head : ctx.heads) {
    auto trunk = train_cnn(ctx, "M2", "CNN from scratch", {head});
    if (!ctx.m2_trunk) {
      ctx.m2_trunk = trunk;
      ctx.m2_width = std::static_pointer_cast<nn::SmallCNN>(trunk)->embedding_width();
    }
  }
  if (ctx.cfg.m2.multitask.size() > 1) {
    std::vector<HeadSpec> heads;
    for (const auto& t : ctx.cfg.m2.multitask) heads.push_back(make_head(ctx, t));
    train_cnn(ctx, "M2-multitask", "CNN from scratch, one trunk and a head per target", heads);
  }
}

Tensor compute_embeddings(RunContext& ctx) {
  const auto& mc = ctx.cfg.m3;
  const std::string cache_path = ctx.run_dir + "/embeddings_" + mc.backbone + ".safetensors";
  nn::ModulePtr backbone;
  data::ImagePipeline p = ctx.pipeline;
  if (mc.backbone == "m2") {
    if (!ctx.m2_trunk) {  // M3 alone: train the M2 trunk first, as the config says
      std::fprintf(stderr, "M3: backbone 'm2' needs the M2 trunk: training M2 first\n");
      run_m2(ctx);
    }
    backbone = ctx.m2_trunk;
  } else {
    const std::string weights = resolve_config_path(ctx.cfg, mc.weights);
    EMBER_CHECK(!weights.empty() && std::filesystem::exists(weights), "M3: backbone mobilenet_v1 needs converted weights: '",
                weights, "' not found (convert them with tools/convert/tflite_mobilenet.py, see tools/convert/README.md)");
    nn::MobileNetConfig c;
    c.folded_bn = true;
    auto net = std::make_shared<nn::MobileNetV1>(c);
    net->load_state_dict(load_safetensors(weights), true);
    backbone = net;
    p.out_h = p.out_w = p.cache_h = p.cache_w = mc.image_size > 0 ? mc.image_size : 224;
    p.resize_mode = data::ResizeMode::Bilinear;
    p.normalization = data::parse_normalization(mc.normalization.empty() ? "minus_one_one" : mc.normalization);
  }
  backbone->eval();
  backbone->freeze();
  std::vector<int64_t> rows = ctx.split.train;
  rows.insert(rows.end(), ctx.split.val.begin(), ctx.split.val.end());
  rows.insert(rows.end(), ctx.split.test.begin(), ctx.split.test.end());
  std::sort(rows.begin(), rows.end());
  auto cache = mc.backbone == "m2" ? ctx.cache : nullptr;  // 224 px images are decoded once, not cached
  data::DataLoader loader(ctx.ds, rows, nullptr, loader_options(ctx, p, 32, false), cache);
  loader.start_epoch(0);
  Progress bar("M3 embed (" + mc.backbone + ")", loader.num_batches(), false);
  Tensor out;
  data::Batch b;
  int64_t done = 0, batches = 0;
  NoGradGuard no_grad;
  while (loader.next(b)) {
    Tensor e = backbone->embed(b.images);
    if (!out.defined()) out = Tensor::zeros({ctx.ds.size(), e.shape()[1]});
    const int64_t D = e.shape()[1];
    auto v = e.contiguous();
    for (int64_t i = 0; i < b.size(); ++i)
      std::copy(v.data<float>() + i * D, v.data<float>() + (i + 1) * D, out.data<float>() + b.rows[size_t(i)] * D);
    done += b.size();
    bar.update(++batches, done);
  }
  bar.done("embeddings " + shape_str(out.shape()));
  save_safetensors(cache_path, {{"embeddings", out}}, {{"backbone", mc.backbone}});
  return out;
}

void run_m3(RunContext& ctx) {
  EMBER_CHECK(ctx.ds.has_images(), "M3: dataset ", ctx.ds.config.name, " has no images");
  ctx.embeddings = compute_embeddings(ctx);
  const int64_t D = ctx.embeddings.shape()[1];
  const auto& mc = ctx.cfg.m3;
  for (const auto& head : ctx.heads) {
    Generator gen(ctx.cfg.seed + 33);
    HeadsModel model(nullptr, D, {head}, mc.hidden, mc.dropout, gen);
    const int64_t bs = mc.train.batch_size;
    auto src = [&](const std::vector<int64_t>& rows, bool shuffle) {
      return TensorSource({gather_rows(ctx.embeddings, rows)}, head_targets(ctx.ds, {head}, rows), rows, bs, shuffle,
                          ctx.cfg.seed);
    };
    auto train = src(ctx.split.train, true), val = src(ctx.split.val, false), test = src(ctx.split.test, false);
    FitOptions fo;
    fo.name = "M3 " + head.target;
    fo.run_dir = ctx.run_dir;
    fo.seed = ctx.cfg.seed;
    FitResult fr = fit(model, {head}, train, val, mc.train, fo);
    Predictions pred = predict(model, {head}, test, fo.name + " test");
    ctx.add_result(evaluate_head("M3", "frozen " + mc.backbone + " embeddings + MLP", head, pred, 0, ctx.ds, ctx.groups),
                   pred, 0, &fr, model.num_parameters());
  }
}

}  // namespace ember::driver
