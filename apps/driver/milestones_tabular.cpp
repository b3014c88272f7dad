// M1 (MLP on the tabular features) and M4 (early fusion of tabular features with image
// embeddings; late fusion of the M1 and M3 predictions). All on the run's one split.
#include <cmath>

#include "apps/driver/progress.h"
#include "apps/driver/run.h"

namespace ember::driver {
namespace {

TensorSource make_source(RunContext& ctx, std::vector<Tensor> inputs, const std::vector<int64_t>& rows,
                         const std::vector<HeadSpec>& heads, int64_t batch, bool shuffle) {
  return TensorSource(std::move(inputs), head_targets(ctx.ds, heads, rows), rows, batch, shuffle, ctx.cfg.seed);
}

// Trains `model` on inputs made by `inputs_of(rows)` for one head, and reports it.
void train_and_report(RunContext& ctx, const std::string& id, const std::string& title, nn::Module& model,
                      const HeadSpec& head, const MilestoneConfig& mc,
                      const std::function<std::vector<Tensor>(const std::vector<int64_t>&)>& inputs_of) {
  const int64_t bs = mc.train.batch_size;
  auto train = make_source(ctx, inputs_of(ctx.split.train), ctx.split.train, {head}, bs, true);
  auto val = make_source(ctx, inputs_of(ctx.split.val), ctx.split.val, {head}, bs, false);
  auto test = make_source(ctx, inputs_of(ctx.split.test), ctx.split.test, {head}, bs, false);
  const FitOptions fo = ctx.fit_options(id + " " + head.target);
  FitResult fit_result = fit(model, {head}, train, val, mc.train, fo);
  Predictions pred = predict(model, {head}, test, fo.name + " test");
  ctx.add_result(evaluate_head(id, title, head, pred, 0, ctx.ds, ctx.groups), pred, 0, &fit_result,
                 model.num_parameters());
}

}  // namespace

void run_m1(RunContext& ctx) {
  const int64_t F = ctx.pre.num_features();
  if (F == 0) {
    std::fprintf(stderr, "M1: the dataset config names no tabular features: skipped\n");
    return;
  }
  for (const auto& head : ctx.heads) {
    Generator gen(ctx.cfg.seed + 11);
    HeadsModel model(nullptr, F, {head}, ctx.cfg.m1.hidden, ctx.cfg.m1.dropout, gen);
    train_and_report(ctx, "M1", "MLP on tabular features", model, head, ctx.cfg.m1,
                     [&](const std::vector<int64_t>& rows) { return std::vector<Tensor>{ctx.pre.transform(ctx.ds, rows)}; });
  }
}

void run_m4(RunContext& ctx) {
  const int64_t F = ctx.pre.num_features();
  if (!ctx.embeddings.defined()) ctx.embeddings = compute_embeddings(ctx);
  const int64_t D = ctx.embeddings.shape()[1];
  for (const auto& head : ctx.heads) {
    if (F > 0) {
      Generator gen(ctx.cfg.seed + 44);
      EarlyFusionModel model(F, D, ctx.cfg.m4.common_width, {head}, ctx.cfg.m4.hidden, ctx.cfg.m4.dropout, gen);
      train_and_report(ctx, "M4-early", "early fusion: tabular + image embedding, projected to equal widths", model,
                       head, ctx.cfg.m4, [&](const std::vector<int64_t>& rows) {
                         return std::vector<Tensor>{ctx.pre.transform(ctx.ds, rows), gather_rows(ctx.embeddings, rows)};
                       });
    }
    // Late fusion: the mean of M1's and M3's test predictions (probabilities, or values).
    auto m1 = ctx.test_predictions.find("M1/" + head.target), m3 = ctx.test_predictions.find("M3/" + head.target);
    if (m1 == ctx.test_predictions.end() || m3 == ctx.test_predictions.end()) continue;
    EMBER_CHECK(m1->second.rows == m3->second.rows, "M4-late: M1 and M3 predicted different test rows");
    Predictions late = m1->second;
    auto& a = late.heads[0];
    const auto& b = m3->second.heads[0];
    for (size_t i = 0; i < late.rows.size(); ++i) {
      if (head.classification()) {
        for (size_t c = 0; c < a.probs[i].size(); ++c) a.probs[i][c] = 0.5 * (a.probs[i][c] + b.probs[i][c]);
        a.label[i] = int64_t(std::max_element(a.probs[i].begin(), a.probs[i].end()) - a.probs[i].begin());
      } else {
        a.value[i] = 0.5 * (a.value[i] + b.value[i]);
      }
    }
    ctx.add_result(evaluate_head("M4-late", "late fusion: mean of M1 and M3 predictions", head, late, 0, ctx.ds,
                                 ctx.groups),
                   late, 0, nullptr, 0);
  }
}

}  // namespace ember::driver
