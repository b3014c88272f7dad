// M2 (a CNN trained from scratch on the images, one model per target and one multitask model) and
// M3 (a frozen backbone -> cached embeddings -> a classifier trained on the embeddings only, with
// optional fine-tuning of the backbone's last blocks at a lower learning rate).
#include <filesystem>
#include <map>

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

// A fingerprint of the dataset's row ids in order (FNV-1a), part of the embeddings file key.
std::string ids_hash(const data::Dataset& ds) {
  uint64_t h = 1469598103934665603ULL;
  for (const auto& id : ds.ids) {
    for (unsigned char c : id) h = (h ^ c) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
  }
  return std::to_string(h);
}

std::shared_ptr<nn::SmallCNN> make_trunk(const RunContext& ctx, Generator& gen) {
  nn::SmallCNNConfig c;
  c.channels = ctx.cfg.m2.channels;
  c.convs_per_block = ctx.cfg.m2.convs_per_block;
  c.batch_norm = true;
  c.fuse_bn_relu = true;  // one pass over each activation instead of two (same maths)
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
  const FitOptions fo = ctx.fit_options(id + " " + heads[0].target + (heads.size() > 1 ? "+" : ""));
  FitResult fr = fit(model, heads, train, val, mc.train, fo);
  Predictions pred = predict(model, heads, test, fo.name + " test", mc.test_flip);
  for (size_t h = 0; h < heads.size(); ++h)
    ctx.add_result(evaluate_head(id, title, heads[h], pred, h, ctx.ds, ctx.groups), pred, h, &fr, model.num_parameters());
  return trunk;
}

// The optional M3 stage: backbone + the head trained on its embeddings, end to end on images, with
// only the last `finetune_blocks` blocks of the backbone unfrozen and a lower learning rate.
void finetune(RunContext& ctx, nn::Module& embedding_head_model, const HeadSpec& head) {
  const auto& mc = ctx.cfg.m3;
  EMBER_CHECK(ctx.m3_backbone, "M3 fine-tuning: no backbone");
  auto features = std::dynamic_pointer_cast<nn::Sequential>(ctx.m3_backbone->child("features"));
  EMBER_CHECK(features, "M3 fine-tuning: the backbone has no 'features' stack");
  Generator gen(ctx.cfg.seed + 34);
  HeadsModel model(ctx.m3_backbone, ctx.embeddings.shape()[1], {head}, mc.hidden, mc.dropout, gen);
  model.load_state_dict(embedding_head_model.state_dict(), false);  // heads.* from the embeddings stage
  model.freeze("trunk");
  const int64_t blocks = int64_t(features->children().size());
  for (int64_t b = std::max<int64_t>(0, blocks - mc.finetune_blocks); b < blocks; ++b)
    model.unfreeze("trunk.features." + features->children()[size_t(b)].first);
  data::ImagePipeline p = ctx.m3_pipeline;
  p.hflip = true;
  const int64_t bs = mc.train.batch_size;
  auto cache = mc.backbone == "m2" ? ctx.cache : nullptr;
  ImageSource train(ctx.ds, ctx.split.train, nullptr, loader_options(ctx, p, bs, true), cache, {head});
  ImageSource val(ctx.ds, ctx.split.val, nullptr, loader_options(ctx, ctx.m3_pipeline, bs, false), cache, {head});
  ImageSource test(ctx.ds, ctx.split.test, nullptr, loader_options(ctx, ctx.m3_pipeline, bs, false), cache, {head});
  TrainConfig tc = mc.train;
  tc.epochs = mc.finetune_epochs;
  FitOptions fo = ctx.fit_options("M3-finetune " + head.target);
  fo.lr_scale = mc.finetune_lr_factor;
  fo.keep_eval = {ctx.m3_backbone.get()};
  FitResult fr = fit(model, {head}, train, val, tc, fo);
  Predictions pred = predict(model, {head}, test, fo.name + " test");
  ctx.add_result(evaluate_head("M3-finetune", mc.backbone + " with its last " + std::to_string(mc.finetune_blocks) +
                                                  " blocks fine-tuned", head, pred, 0, ctx.ds, ctx.groups),
                 pred, 0, &fr, model.num_trainable_parameters());
  model.freeze("trunk");  // leave the shared backbone frozen for M4
}

}  // namespace

void run_m2(RunContext& ctx) {
  EMBER_CHECK(ctx.ds.has_images(), "M2: dataset ", ctx.ds.config.name, " has no images");
  for (const auto& head : ctx.heads) {
    if (!ctx.cfg.m2.unitask) break;  // only the multitask CNN below
    auto trunk = train_cnn(ctx, "M2", "CNN from scratch", {head});
    if (!ctx.m2_trunk) {
      ctx.m2_trunk = trunk;
      ctx.m2_width = std::static_pointer_cast<nn::SmallCNN>(trunk)->embedding_width();
    }
  }
  if (ctx.cfg.m2.multitask.size() > 1) {
    std::vector<HeadSpec> heads;
    for (const auto& t : ctx.cfg.m2.multitask) heads.push_back(make_head(ctx, t));
    auto trunk = train_cnn(ctx, "M2-multitask", "CNN from scratch, one trunk and a head per target", heads);
    if (!ctx.m2_trunk) {  // no unitask CNN: the multitask trunk is the "m2" backbone of M3
      ctx.m2_trunk = trunk;
      ctx.m2_width = std::static_pointer_cast<nn::SmallCNN>(trunk)->embedding_width();
    }
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
  ctx.m3_backbone = backbone;
  ctx.m3_pipeline = p;
  // A pretrained backbone gives the same embeddings every run: with m3.embeddings_file they are
  // computed once and reused by later runs (e.g. the gender and age experiments on one dataset),
  // when the file's key (backbone, weights, input pipeline, dataset ids) matches this run's.
  const std::string shared_path = resolve_config_path(ctx.cfg, mc.embeddings_file);
  std::map<std::string, std::string> key{{"backbone", mc.backbone},
                                         {"weights", std::filesystem::path(mc.weights).filename().string()},
                                         {"pipeline", p.describe() + ",out=" + std::to_string(p.out_h) + "x" + std::to_string(p.out_w) +
                                                      ",norm=" + std::to_string(int(p.normalization))},
                                         {"dataset", ctx.ds.config.name},
                                         {"rows", std::to_string(ctx.ds.size())},
                                         {"ids_hash", ids_hash(ctx.ds)}};
  if (!shared_path.empty() && mc.backbone != "m2" && std::filesystem::exists(shared_path)) {
    std::map<std::string, std::string> meta;
    auto loaded = load_safetensors(shared_path, &meta);
    bool match = loaded.count("embeddings") > 0;
    for (const auto& [k, v] : key) match = match && meta.count(k) && meta.at(k) == v;
    if (match) {
      if (!Progress::global_quiet())
        std::fprintf(stderr, "M3: reusing embeddings %s from %s\n", shape_str(loaded["embeddings"].shape()).c_str(),
                     shared_path.c_str());
      save_safetensors(cache_path, {{"embeddings", loaded["embeddings"]}}, key);
      return loaded["embeddings"];
    }
    std::fprintf(stderr, "M3: %s was made for another backbone, pipeline or dataset: recomputing\n",
                 shared_path.c_str());
  }
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
  backbone->to(ctx.device());
  while (loader.next(b)) {
    Tensor e = backbone->embed(b.images.to(ctx.device())).to(Device::CPU);
    if (!out.defined()) out = Tensor::zeros({ctx.ds.size(), e.shape()[1]});
    const int64_t D = e.shape()[1];
    auto v = e.contiguous();
    for (int64_t i = 0; i < b.size(); ++i)
      std::copy(v.data<float>() + i * D, v.data<float>() + (i + 1) * D, out.data<float>() + b.rows[size_t(i)] * D);
    done += b.size();
    bar.update(++batches, done);
  }
  bar.done("embeddings " + shape_str(out.shape()));
  save_safetensors(cache_path, {{"embeddings", out}}, key);
  if (!shared_path.empty() && mc.backbone != "m2") {
    std::filesystem::create_directories(std::filesystem::path(shared_path).parent_path());
    save_safetensors(shared_path, {{"embeddings", out}}, key);
  }
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
    const FitOptions fo = ctx.fit_options("M3 " + head.target);
    FitResult fr = fit(model, {head}, train, val, mc.train, fo);
    Predictions pred = predict(model, {head}, test, fo.name + " test");
    ctx.add_result(evaluate_head("M3", "frozen " + mc.backbone + " embeddings + MLP", head, pred, 0, ctx.ds, ctx.groups),
                   pred, 0, &fr, model.num_parameters());
    if (mc.finetune_epochs > 0) finetune(ctx, model, head);
  }
}

}  // namespace ember::driver
