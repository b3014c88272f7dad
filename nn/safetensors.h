// ember's native weight format: safetensors, written here from the format description.
//
// File layout: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON, then the data buffer.
// The JSON object maps tensor name -> {"dtype": "F32", "shape": [2, 3], "data_offsets": [b, e]}
// (offsets in bytes, relative to the buffer start) plus an optional "__metadata__": {str: str}.
// Tensors are row-major, little-endian, packed back to back with no gaps.
//
// Reading maps the file with mmap and validates the whole header before any tensor is touched
// (see SafetensorsFile). By default tensors are COPIED out of the mapping into fresh 64-byte
// aligned ember storage, so they are writable and outlive the file. SafetensorsFile::get(name,
// /*alias=*/true) instead returns a zero-copy tensor whose Storage keeps the mapping alive; the
// mapping is private (copy-on-write), so writing to such a tensor never modifies the file.
//
// dtypes: F32, F64, I64 and BF16 load as themselves; F16 loads as float32, I32 and U8 as int64
// (ember has no such storage types; the conversion is exact). Writing supports ember's dtypes.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ember {

// One tensor as the header describes it.
struct SafetensorsEntry {
  std::string name;
  std::string dtype;  // the file's tag: "F32", "F16", "BF16", ...
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte offsets into the data buffer
};

class SafetensorsFile {
 public:
  // Maps `path` and validates its header; throws ember::Error naming the file, tensor and reason.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return path_; }
  // Entries sorted by name.
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const;
  const SafetensorsEntry& entry(const std::string& name) const;
  // The tensor `name` as an ember dtype (see the conversions above). alias=true returns a view of
  // the mapping when the dtype needs no conversion and the data is suitably aligned, else a copy.
  Tensor get(const std::string& name, bool alias = false) const;

  struct Mapping;  // the mmap'ed bytes (shared with aliasing tensors)

 private:
  std::string path_;
  std::shared_ptr<Mapping> map_;
  uint64_t data_start_ = 0;  // 8 + N: where the buffer starts in the file
  std::vector<SafetensorsEntry> entries_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
};

// Loads every tensor (copies, see above); fills *metadata with "__metadata__" when given.
std::map<std::string, Tensor> load_safetensors(const std::string& path,
                                               std::map<std::string, std::string>* metadata = nullptr);

// Writes `tensors` (sorted by name, any strides, CPU or CUDA) atomically: a temporary file in the
// same directory is written and fsync'ed, then renamed over `path`, then the directory is fsync'ed.
// A failure at any point leaves an existing file at `path` untouched.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// The safetensors tag for an ember dtype ("F32", "F64", "I64", "BF16").
const char* safetensors_dtype_tag(DType dtype);

// Writes `bytes` to `path` with the same temp-file + fsync + rename protocol (used by
// save_safetensors; exposed for other writers of small files, e.g. JSON sidecars).
void write_file_atomically(const std::string& path, const std::vector<std::pair<const void*, size_t>>& chunks);

}  // namespace ember
