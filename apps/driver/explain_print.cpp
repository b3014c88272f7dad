// `ember explain` output: a text narration in five numbered sections, or the same as one JSON document.
#include <omp.h>

#include <cmath>

#include "apps/driver/explain.h"

namespace ember::driver {
namespace {

// 1234567 -> "1.235 M"; keeps columns short while the JSON keeps exact integers.
std::string si(double v) {
  const char* units[] = {"", " k", " M", " G", " T"};
  int u = 0;
  while (std::abs(v) >= 1000 && u < 4) v /= 1000, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.3f%s" : "%.0f%s", v, units[u]);
  return buf;
}

std::string shapes(const std::vector<Shape>& ss) {
  std::string out;
  for (const auto& s : ss) out += (out.empty() ? "" : " ") + shape_str(s);
  return out;
}

std::string join(const std::vector<std::string>& parts, const char* sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

double pct(double part, double whole) { return whole > 0 ? 100.0 * part / whole : 0; }

}  // namespace

void print_explain(const ExplainResult& r, std::FILE* out) {
  const auto& o = r.options;
  const auto& t = r.totals;
  std::fprintf(out, "ember explain: one %s step of %s (--model %s), batch %lld at %dx%d, on %s, CPU ISA %s, %d threads\n",
               o.forward_only ? "forward-only" : "training", r.model_name.c_str(), o.model.c_str(),
               (long long)o.batch, o.image_size, o.image_size, o.device.c_str(), r.isa.c_str(), omp_get_max_threads());
  std::fprintf(out, "parameters: %lld (%lld trainable%s)\n", (long long)r.num_parameters,
               (long long)r.trainable_parameters, o.freeze.empty() ? "" : (", frozen: " + o.freeze + "*").c_str());
  std::fprintf(out, "conventions:\n  %s\n", [&] {
    std::string c = cost_conventions();
    for (size_t i = 0; (i = c.find('\n', i)) != std::string::npos; i += 3) c.replace(i, 1, "\n  ");
    return c;
  }().c_str());

  std::fprintf(out, "\n[1] data path of sample 0 (dataset %s)\n", r.dataset_dir.c_str());
  for (const auto& s : r.data) {
    if (s.shape.empty()) {
      std::fprintf(out, "  %-11s %s\n", s.name.c_str(), s.detail.c_str());
      continue;
    }
    std::fprintf(out, "  %-11s %-18s min %8.3f  max %8.3f  mean %8.3f  %7.3f ms  %s\n", s.name.c_str(),
                 shape_str(s.shape).c_str(), s.min, s.max, s.mean, s.ms, s.detail.c_str());
  }

  std::fprintf(out, "\n[2] forward: %zu ops\n", r.forward.size());
  std::fprintf(out, "  %3s %-22s %-20s %-22s %-4s %-36s %10s %10s %10s %8s %8s\n", "#", "layer", "op", "kernel", "dev",
               "inputs -> output", "MACs", "FLOPs", "bytes", "ms", "GFLOP/s");
  for (const auto& f : r.forward) {
    std::string io = shapes(f.input_shapes) + " -> " + shape_str(f.output_shape);
    std::fprintf(out, "  %3lld %-22s %-20s %-22s %-4s %-36s %10s %10s %10s %8.3f %8.2f\n", (long long)f.index,
                 f.layer.c_str(), f.op.c_str(), f.kernel.c_str(), f.device.c_str(), io.c_str(), si(double(f.cost.macs)).c_str(),
                 si(double(f.cost.flops)).c_str(), si(double(f.cost.bytes)).c_str(), f.ms,
                 f.ms > 0 ? double(f.cost.flops) / (f.ms * 1e6) : 0.0);
  }
  std::fprintf(out, "  loss (cross-entropy, mean over the batch) = %.6f\n", r.loss);

  if (o.forward_only) {
    std::fprintf(out, "\n[3] backward: skipped (--forward-only)\n[4] optimizer: skipped (--forward-only)\n");
  } else {
    std::fprintf(out, "\n[3] backward: the tape replayed in reverse, %zu nodes (each gets dL/d(its output))\n",
                 r.backward.size());
    for (size_t i = 0; i < r.backward.size(); ++i) {
      const auto& b = r.backward[i];
      std::fprintf(out, "  %3zu %-20s %-22s dL/dout %-18s %8.3f ms  %s\n", i, b.op.c_str(), b.layer.c_str(),
                   shape_str(b.grad_output_shape).c_str(), b.ms, b.kernel.c_str());
      std::fprintf(out, "      -> %s\n", b.gradients.empty() ? "(no input needs a gradient)" : join(b.gradients, "; ").c_str());
    }
    std::fprintf(out, "\n[4] optimizer update: %s, lr %g (||dw|| is the step actually taken)\n", o.optimizer.c_str(), o.lr);
    std::fprintf(out, "  %-28s %-18s %12s %12s %12s %10s\n", "parameter", "shape", "||grad||", "||dw||", "||dw||/||w||",
                 "lr");
    for (const auto& u : r.updates)
      std::fprintf(out, "  %-28s %-18s %12.4e %12.4e %12.4e %10g\n", u.name.c_str(), shape_str(u.shape).c_str(), u.grad_norm,
                   u.step_norm, u.weight_norm > 0 ? u.step_norm / u.weight_norm : 0, u.lr);
  }

  std::fprintf(out, "\n[5] totals\n");
  std::fprintf(out, "  forward : %s MACs = %s FLOPs, %sB moved, intensity %.2f FLOP/byte, %.3f ms -> %.2f GFLOP/s\n",
               si(double(t.forward_macs)).c_str(), si(double(t.forward_flops)).c_str(), si(double(t.forward_bytes)).c_str(),
               t.intensity(), t.forward_ms, t.forward_gflops());
  if (!o.forward_only) {
    std::fprintf(out, "  backward: %s FLOPs, %.3f ms -> %.2f GFLOP/s\n", si(double(t.backward_flops)).c_str(),
                 t.backward_ms, t.backward_gflops());
    std::fprintf(out, "  optimizer step: %.3f ms\n", t.optimizer_ms);
  }
  std::fprintf(out, "  peak    : %.1f GFLOP/s (%s)\n", t.peak_gflops, t.peak_source.c_str());
  std::fprintf(out, "  achieved: forward %.1f%% of peak", pct(t.forward_gflops(), t.peak_gflops));
  if (!o.forward_only) std::fprintf(out, ", backward %.1f%% of peak", pct(t.backward_gflops(), t.peak_gflops));
  std::fprintf(out, "\n");
}

nlohmann::json explain_json(const ExplainResult& r) {
  using nlohmann::json;
  const auto& o = r.options;
  const auto& t = r.totals;
  json j;
  j["options"] = {{"model", o.model},           {"image_size", o.image_size}, {"batch", o.batch}, {"num_classes", o.num_classes},
                  {"dataset", o.dataset},       {"optimizer", o.optimizer},   {"lr", o.lr},
                  {"normalization", o.normalization}, {"forward_only", o.forward_only},
                  {"channels", o.channels}, {"convs_per_block", o.convs_per_block}, {"fuse_bn_relu", o.fuse_bn_relu}, {"freeze", o.freeze},     {"seed", o.seed}};
  j["model"] = {{"name", r.model_name},
                {"parameters", r.num_parameters},
                {"trainable_parameters", r.trainable_parameters},
                {"num_classes", r.num_classes}};
  j["machine"] = {{"isa", r.isa}, {"threads", omp_get_max_threads()}, {"device", o.device}};
  j["conventions"] = cost_conventions();
  j["dataset"] = r.dataset_dir;
  j["data"] = json::array();
  for (const auto& s : r.data)
    j["data"].push_back({{"stage", s.name}, {"detail", s.detail}, {"shape", s.shape}, {"min", s.min},
                         {"max", s.max}, {"mean", s.mean}, {"ms", s.ms}});
  j["forward"] = json::array();
  for (const auto& f : r.forward)
    j["forward"].push_back({{"index", f.index},           {"layer", f.layer},
                            {"module", f.module},         {"op", f.op},
                            {"kernel", f.kernel},         {"device", f.device},
                            {"input_shapes", f.input_shapes}, {"output_shape", f.output_shape},
                            {"macs", f.cost.macs},        {"flops", f.cost.flops},
                            {"bytes", f.cost.bytes},      {"flop_rule", f.cost.rule},
                            {"ms", f.ms}});
  j["loss"] = r.loss;
  j["backward"] = json::array();
  for (const auto& b : r.backward)
    j["backward"].push_back({{"op", b.op}, {"layer", b.layer}, {"kernel", b.kernel},
                             {"grad_output_shape", b.grad_output_shape}, {"gradients", b.gradients},
                             {"flops", b.flops}, {"ms", b.ms}});
  j["optimizer"] = json::array();
  for (const auto& u : r.updates)
    j["optimizer"].push_back({{"parameter", u.name}, {"shape", u.shape}, {"grad_norm", u.grad_norm},
                              {"step_norm", u.step_norm}, {"weight_norm", u.weight_norm}, {"lr", u.lr}});
  j["totals"] = {{"forward_macs", t.forward_macs},
                 {"forward_flops", t.forward_flops},
                 {"forward_bytes", t.forward_bytes},
                 {"forward_ms", t.forward_ms},
                 {"arithmetic_intensity", t.intensity()},
                 {"forward_gflops", t.forward_gflops()},
                 {"backward_flops", t.backward_flops},
                 {"backward_ms", t.backward_ms},
                 {"backward_gflops", t.backward_gflops()},
                 {"optimizer_ms", t.optimizer_ms},
                 {"peak_gflops", t.peak_gflops},
                 {"peak_source", t.peak_source},
                 {"forward_pct_of_peak", pct(t.forward_gflops(), t.peak_gflops)},
                 {"backward_pct_of_peak", pct(t.backward_gflops(), t.peak_gflops)}};
  return j;
}

}  // namespace ember::driver
