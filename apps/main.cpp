// ember: the command-line entry point.
//   ember run [EXPERIMENT.json]      all milestones (default: the embedded synthetic experiment)
//   ember train EXPERIMENT -m M2     one milestone (M1..M4) on the experiment's split
//   ember embed EXPERIMENT           frozen-backbone embeddings of every row to a safetensors file
//   ember eval RUN_DIR               recompute test metrics from a run's saved predictions
//   ember report RUN_DIR             rebuild report.html / summary.md from results.json
//   ember demo | kernels             tiny spiral training run | kernel variants per op
//   ember explain --model cnn        one training step, narrated op by op (apps/driver/explain.h)
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "apps/demo.h"
#include "apps/driver/commands.h"
#include "apps/driver/explain.h"
#include "kernels/registry.h"

int main(int argc, char** argv) {
  namespace drv = ember::driver;
  CLI::App app{"ember: a from-scratch deep learning engine"};
  app.require_subcommand(1);
  bool quiet = false;
  app.add_flag("-q,--quiet", quiet, "No progress bars or per-epoch lines");

  drv::CommandArgs args;
  auto* run = app.add_subcommand("run", "Run all milestones (M1-M4) of an experiment and write the report");
  run->add_option("experiment", args.experiment, "Experiment JSON (default: the embedded synthetic experiment)");
  run->add_option("-o,--out", args.out_dir, "Run directory (default: runs/<experiment name>)");
  const char* device_help = "cpu | cuda: where models train (default: the experiment's \"device\", else cpu)";
  run->add_option("--device", args.device, device_help);

  auto* train = app.add_subcommand("train", "Train one milestone of an experiment");
  train->add_option("experiment", args.experiment, "Experiment JSON")->required();
  train->add_option("-m,--milestone", args.milestones, "M1, M2, M3 or M4 (repeatable)")->required();
  train->add_option("-o,--out", args.out_dir, "Run directory");
  train->add_option("--device", args.device, device_help);

  auto* embed = app.add_subcommand("embed", "Write frozen-backbone embeddings of every row to a safetensors file");
  embed->add_option("experiment", args.experiment, "Experiment JSON")->required();
  embed->add_option("-o,--out", args.out_dir, "Run directory");
  embed->add_option("--device", args.device, device_help);

  auto* eval = app.add_subcommand("eval", "Recompute test metrics (overall and per subgroup) from a run's predictions");
  eval->add_option("run_dir", args.run_dir, "Run directory")->required();

  auto* report = app.add_subcommand("report", "Rebuild report.html and summary.md from a run's results.json");
  report->add_option("run_dir", args.run_dir, "Run directory")->required();

  ember::apps::DemoOptions demo;
  auto* demo_cmd = app.add_subcommand("demo", "Train a small MLP on a synthetic 2-class spiral (no data needed)");
  demo_cmd->add_option("--steps", demo.steps, "Training steps");
  demo_cmd->add_option("--seed", demo.seed, "Random seed");

  auto* kernels_cmd = app.add_subcommand("kernels", "List kernel variants and the active one per op");

  drv::ExplainOptions ex;
  auto* explain = app.add_subcommand("explain", "Run one training step and narrate it: data path, forward ops with "
                                                "FLOPs/bytes/time, the backward tape, the update, totals vs peak");
  explain->add_option("--model", ex.model, "mlp | cnn | vgg16")->check(CLI::IsMember({"mlp", "cnn", "vgg16"}));
  explain->add_option("--image-size", ex.image_size, "Network input size (pixels)");
  explain->add_option("--batch", ex.batch, "Batch size");
  explain->add_option("--num-classes", ex.num_classes, "Classifier outputs (default: the dataset target's classes)");
  explain->add_option("--dataset", ex.dataset, "Dataset config JSON (default: a synthetic dataset)");
  explain->add_option("--work-dir", ex.work_dir, "Where to write the synthetic dataset (default: a temp dir, removed)");
  explain->add_option("--optimizer", ex.optimizer, "sgd | adam | adamw")->check(CLI::IsMember({"sgd", "adam", "adamw"}));
  explain->add_option("--lr", ex.lr, "Learning rate");
  explain->add_option("--normalization", ex.normalization, "none | imagenet | minus_one_one | caffe");
  explain->add_flag("--forward-only", ex.forward_only, "Stop after the forward pass and the loss");
  explain->add_flag("!--no-warmup", ex.warmup, "Time the first forward cold (default: one untimed warm-up pass)");
  explain->add_option("--channels", ex.channels, "cnn: output channels of each conv block (default 16 32 64)");
  explain->add_option("--convs-per-block", ex.convs_per_block, "cnn: conv-BN-ReLU units per block (default 1)");
  explain->add_flag("--fuse-bn-relu", ex.fuse_bn_relu, "cnn: BatchNorm applies the ReLU itself");
  explain->add_option("--freeze", ex.freeze, "Freeze parameters under this name prefix (e.g. features)");
  explain->add_option("--peak-gflops", ex.peak_gflops, "Machine peak GFLOP/s (default: measure an FMA loop)");
  explain->add_option("--seed", ex.seed, "Seed (data and weights)");
  explain->add_option("--device", ex.device, "cpu | cuda: where the model runs (GPU op times wait for the kernels)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  explain->add_flag("--json", ex.json, "Print one JSON document instead of text");

  CLI11_PARSE(app, argc, argv);
  args.quiet = quiet;
  demo.quiet = quiet;
  try {
    if (*run) return drv::cmd_run(args);
    if (*train) return drv::cmd_run(args);
    if (*embed) return drv::cmd_embed(args);
    if (*eval) return drv::cmd_eval(args);
    if (*report) return drv::cmd_report(args);
    if (*explain) return drv::cmd_explain(ex);
    if (*demo_cmd) {
      auto r = ember::apps::run_demo(demo);
      std::printf("demo: final loss %.4f, training accuracy %.3f\n", r.loss, r.accuracy);
      return r.accuracy >= 0.95 ? 0 : 1;
    }
    if (*kernels_cmd) {
      std::printf("CPU ISA: %s\n", ember::kernels::isa_name(ember::kernels::cpu_isa()));
      for (const auto& op : ember::kernels::registered_ops()) {
        std::printf("%-20s active=%-10s variants:", op.c_str(), ember::kernels::active_variant(op).c_str());
        for (const auto& v : ember::kernels::variants(op)) std::printf(" %s", v.c_str());
        std::printf("\n");
      }
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ember: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
