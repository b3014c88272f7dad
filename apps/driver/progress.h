// A one-line progress bar with ETA and images/s for long steps (training epochs, embedding
// extraction). On a terminal it redraws in place; otherwise (CI logs) it prints nothing until
// done() prints one summary line. --quiet silences both.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace ember::driver {

class Progress {
 public:
  Progress(std::string label, int64_t total_steps, bool quiet);
  void update(int64_t steps_done, int64_t items_done);  // items: images or rows
  // Prints the final line (with `extra`, e.g. the epoch's losses) and returns elapsed seconds.
  double done(const std::string& extra = "");
  static void set_global_quiet(bool quiet);
  static bool global_quiet();

 private:
  std::string label_;
  int64_t total_;
  bool quiet_, tty_;
  int64_t items_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace ember::driver
