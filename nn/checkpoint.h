// Training checkpoints: everything needed to resume a run bit-identically, in ONE safetensors file.
//
//   tensors:       "model.<name>"  the model state (parameters and buffers)
//                  "optim.<key>"   the optimizer's buffers (OptimizerState::tensors)
//   __metadata__:  "ember.format" = "ember.checkpoint.v1", "epoch", "step" (decimal),
//                  "rng"     JSON {name: {"seed": u64, "offset": u64}} for each named Generator,
//                  "optim"   JSON of OptimizerState::scalars (absent when there is no optimizer),
//                  "config"  the run's configuration as JSON text (stored verbatim),
//                  "user.<key>" any extra strings of the caller.
//
// save_checkpoint is atomic (see save_safetensors): a crash mid-save leaves the previous file intact.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "engine/rng.h"
#include "engine/tensor.h"
#include "nn/optim.h"

namespace ember {

struct GeneratorState {
  uint64_t seed = 0, offset = 0;
  static GeneratorState of(const Generator& g) { return {g.seed(), g.offset()}; }
  void restore(Generator& g) const { g.set_state(seed, offset); }
  bool operator==(const GeneratorState&) const = default;
};

struct Checkpoint {
  std::map<std::string, Tensor> model;
  OptimizerState optimizer;  // scalars null when there is no optimizer
  int64_t epoch = 0;
  int64_t step = 0;
  std::map<std::string, GeneratorState> generators;  // "shuffle", "dropout", ...
  std::string config;                                // JSON text; must parse when non-empty
  std::map<std::string, std::string> user;           // free-form extra metadata
};

void save_checkpoint(const std::string& path, const Checkpoint& ckpt);
// Throws ember::Error naming the file and what is wrong (truncated, not a checkpoint, bad field).
Checkpoint load_checkpoint(const std::string& path);

}  // namespace ember
