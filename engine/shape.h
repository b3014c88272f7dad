// Shapes and strides (in elements). A Shape is a plain vector so it prints and compares easily.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ember {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);                // "[2, 3, 4]"
int64_t shape_numel(const Shape& s);                  // 1 for a scalar []
Shape contiguous_strides(const Shape& s);             // row-major
// NumPy broadcasting of two shapes; throws naming `op` and both shapes when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Normalises a possibly negative dim against `ndim`; throws naming `op` when out of range.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

}  // namespace ember
