// ember: the command-line entry point. Subcommands are registered here; each lives in its own file.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "apps/demo.h"
#include "kernels/registry.h"

int main(int argc, char** argv) {
  CLI::App app{"ember: a from-scratch deep learning engine"};
  app.require_subcommand(1);

  ember::apps::DemoOptions demo;
  auto* demo_cmd = app.add_subcommand("demo", "Train a small MLP on a synthetic 2-class spiral (no data needed)");
  demo_cmd->add_option("--steps", demo.steps, "Training steps");
  demo_cmd->add_option("--seed", demo.seed, "Random seed");
  demo_cmd->add_flag("--quiet", demo.quiet, "Print only the final line");

  auto* kernels_cmd = app.add_subcommand("kernels", "List kernel variants and the active one per op");

  CLI11_PARSE(app, argc, argv);
  try {
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
