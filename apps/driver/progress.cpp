#include "apps/driver/progress.h"

#include <unistd.h>

#include <cstdio>

namespace ember::driver {
namespace {
bool g_quiet = false;
}

void Progress::set_global_quiet(bool quiet) { g_quiet = quiet; }
bool Progress::global_quiet() { return g_quiet; }

Progress::Progress(std::string label, int64_t total, bool quiet)
    : label_(std::move(label)), total_(total), quiet_(quiet || g_quiet), tty_(isatty(fileno(stderr)) != 0),
      start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

void Progress::update(int64_t done, int64_t items) {
  items_ = items;
  if (quiet_ || !tty_) return;
  auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  double secs = std::chrono::duration<double>(now - start_).count();
  double frac = total_ > 0 ? double(done) / double(total_) : 1.0;
  double eta = frac > 0 ? secs * (1 - frac) / frac : 0;
  const int width = 24;
  int filled = int(frac * width);
  std::string bar(size_t(filled), '#');
  bar += std::string(size_t(width - filled), '.');
  std::fprintf(stderr, "\r%-28s [%s] %3d%% %lld/%lld  %.0f img/s  ETA %.0fs   ", label_.c_str(), bar.c_str(),
               int(frac * 100), (long long)done, (long long)total_, secs > 0 ? double(items) / secs : 0.0, eta);
  std::fflush(stderr);
}

double Progress::done(const std::string& extra) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (!quiet_) {
    if (tty_) std::fprintf(stderr, "\r%*s\r", 110, "");
    std::fprintf(stderr, "%-28s %6.1fs  %6.0f img/s  %s\n", label_.c_str(), secs, secs > 0 ? double(items_) / secs : 0.0,
                 extra.c_str());
  }
  return secs;
}

}  // namespace ember::driver
