// Errors are exceptions whose message names what is at fault (op, tensor, shape, file, row).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace ember {

// Thrown for invalid arguments to an op (shape/dtype/device mismatch, bad index, ...).
struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

namespace detail {
template <class... Args>
std::string cat(Args&&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
}  // namespace detail

}  // namespace ember

// EMBER_CHECK(cond, "op", ": shapes ", a, " and ", b, " differ") -> throws ember::Error.
#define EMBER_CHECK(cond, ...)                                   \
  do {                                                           \
    if (!(cond)) throw ::ember::Error(::ember::detail::cat(__VA_ARGS__)); \
  } while (0)
