#pragma once
#include <cstdint>

namespace ember::apps {

struct DemoOptions {
  int64_t points_per_class = 200;
  int64_t hidden = 64;
  int64_t steps = 600;
  double lr = 0.05;
  uint64_t seed = 1;
  bool quiet = false;
};
struct DemoResult {
  double loss = 0, accuracy = 0;
};
DemoResult run_demo(const DemoOptions& opt);

}  // namespace ember::apps
