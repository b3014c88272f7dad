// Reading safetensors: mmap the file, validate the header completely, then hand out tensors.
// Validation is strict because checkpoints and converted weights come from outside the process:
// every malformed header must end in an ember::Error naming the file, the tensor and the reason,
// never in an out-of-bounds read.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "nn/safetensors.h"

namespace ember {

struct SafetensorsFile::Mapping {
  void* addr = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (addr) munmap(addr, size);
  }
  const uint8_t* bytes() const { return static_cast<const uint8_t*>(addr); }
};

namespace {

using json = nlohmann::json;

// The reference implementation refuses headers over 100 MB; a real header is a few KB per tensor.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DTypeInfo {
  const char* tag;
  size_t file_size;  // bytes per element in the file
};
constexpr DTypeInfo kDTypes[] = {{"F32", 4}, {"F64", 8}, {"I64", 8}, {"BF16", 2},
                                 {"F16", 2}, {"I32", 4}, {"U8", 1}};

const DTypeInfo* find_dtype(const std::string& tag) {
  for (const auto& d : kDTypes)
    if (tag == d.tag) return &d;
  return nullptr;
}

// What an entry becomes in ember.
DType ember_dtype_for(const std::string& tag) {
  if (tag == "F32" || tag == "F16") return DType::Float32;
  if (tag == "F64") return DType::Float64;
  if (tag == "BF16") return DType::BFloat16;
  return DType::Int64;  // I64, I32, U8
}

// IEEE half -> float, including subnormals, infinities and NaN.
float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {  // subnormal: normalise the mantissa
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400u) == 0);
    bits = sign | (uint32_t(112 - e) << 23) | ((mant & 0x3ffu) << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

template <class... Args>
[[noreturn]] void fail(const std::string& path, Args&&... args) {
  throw Error(detail::cat("safetensors '", path, "': ", std::forward<Args>(args)...));
}

// Parses the header, rejecting duplicate keys at any depth (nlohmann::json would silently keep the
// last one, so two tensors could claim one name and one of them would vanish).
json parse_header(const std::string& path, const char* text, size_t n) {
  std::vector<std::vector<std::string>> open_objects;
  std::string top_key, duplicate;
  auto on_event = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) open_objects.emplace_back();
    else if (event == json::parse_event_t::object_end && !open_objects.empty()) open_objects.pop_back();
    else if (event == json::parse_event_t::key && !open_objects.empty()) {
      std::string key = parsed.get<std::string>();
      auto& seen = open_objects.back();
      if (duplicate.empty() && std::find(seen.begin(), seen.end(), key) != seen.end())
        duplicate = open_objects.size() == 1 ? "tensor '" + key + "'" : "key '" + key + "' in '" + top_key + "'";
      seen.push_back(key);
      if (open_objects.size() == 1) top_key = key;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text, text + n, on_event);
  } catch (const json::exception& e) {
    fail(path, "header is not valid JSON: ", e.what());
  }
  if (!duplicate.empty()) fail(path, "header has a duplicate ", duplicate);
  if (!header.is_object()) fail(path, "header is not a JSON object but ", header.type_name());
  return header;
}

uint64_t as_offset(const std::string& path, const std::string& name, const json& v) {
  if (!v.is_number_unsigned()) fail(path, "tensor '", name, "': data_offsets entry ", v.dump(), " is not a non-negative integer");
  return v.get<uint64_t>();
}

SafetensorsEntry parse_entry(const std::string& path, const std::string& name, const json& v, uint64_t buffer_size) {
  auto bad = [&](auto&&... why) { fail(path, "tensor '", name, "': ", why...); };
  if (!v.is_object()) bad("entry is not a JSON object");
  SafetensorsEntry e;
  e.name = name;
  auto dt = v.find("dtype");
  if (dt == v.end() || !dt->is_string()) bad("missing or non-string 'dtype'");
  e.dtype = dt->get<std::string>();
  const DTypeInfo* info = find_dtype(e.dtype);
  if (!info) bad("unknown dtype '", e.dtype, "' (supported: F32, F64, I64, BF16, F16, I32, U8)");

  auto sh = v.find("shape");
  if (sh == v.end() || !sh->is_array()) bad("missing or non-array 'shape'");
  uint64_t numel = 1;
  for (const auto& d : *sh) {
    if (d.is_number_integer() && !d.is_number_unsigned()) bad("shape entry ", d.dump(), " is negative");
    if (!d.is_number_unsigned()) bad("shape entry ", d.dump(), " is not an integer");
    uint64_t n = d.get<uint64_t>();
    if (n > uint64_t(INT64_MAX) || __builtin_mul_overflow(numel, n, &numel) || numel > uint64_t(INT64_MAX))
      bad("shape ", sh->dump(), " overflows the element count");
    e.shape.push_back(int64_t(n));
  }
  uint64_t nbytes;
  if (__builtin_mul_overflow(numel, uint64_t(info->file_size), &nbytes)) bad("shape ", sh->dump(), " overflows the byte count");

  auto off = v.find("data_offsets");
  if (off == v.end() || !off->is_array() || off->size() != 2) bad("'data_offsets' is not a pair of integers");
  e.begin = as_offset(path, name, (*off)[0]);
  e.end = as_offset(path, name, (*off)[1]);
  if (e.end < e.begin) bad("data_offsets [", e.begin, ", ", e.end, "] end before begin");
  if (e.end > buffer_size) bad("data_offsets [", e.begin, ", ", e.end, "] run past the data buffer (", buffer_size, " bytes)");
  if (e.end - e.begin != nbytes)
    bad("data_offsets span ", e.end - e.begin, " bytes but ", e.dtype, shape_str(e.shape), " needs ", nbytes);
  return e;
}

// The buffer must be tiled exactly: no overlaps (two tensors sharing bytes) and no gaps (bytes
// that belong to nobody, which usually means a truncated or hand-edited header).
void check_coverage(const std::string& path, std::vector<SafetensorsEntry> sorted, uint64_t buffer_size) {
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t covered = 0;
  const SafetensorsEntry* prev = nullptr;
  for (const auto& e : sorted) {
    if (e.begin < covered)
      fail(path, "tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end, "] overlap tensor '", prev->name, "'");
    if (e.begin > covered)
      fail(path, "tensor '", e.name, "': gap of ", e.begin - covered, " unused bytes before it in the data buffer");
    covered = e.end;
    prev = &e;
  }
  if (covered != buffer_size)
    fail(path, "data buffer has ", buffer_size - covered, " trailing bytes not covered by any tensor (buffer ",
         buffer_size, " bytes)");
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path), map_(std::make_shared<Mapping>()) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, "cannot open: ", std::strerror(errno));
  struct stat st{};
  if (fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    fail(path, "cannot stat: ", std::strerror(err));
  }
  const uint64_t file_size = uint64_t(st.st_size);
  if (file_size < 8) {
    ::close(fd);
    fail(path, "file is ", file_size, " bytes, shorter than the 8-byte header length");
  }
  // Private + writable: copy-on-write, so aliased tensors may be modified without touching the file.
  void* addr = mmap(nullptr, file_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  int err = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (addr == MAP_FAILED) fail(path, "mmap failed: ", std::strerror(err));
  map_->addr = addr;
  map_->size = file_size;

  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | map_->bytes()[i];  // little-endian on any host
  if (n > kMaxHeaderBytes) fail(path, "header length ", n, " is absurdly large (limit ", kMaxHeaderBytes, ")");
  if (n > file_size - 8) fail(path, "header length ", n, " runs past the end of the file (", file_size, " bytes)");
  data_start_ = 8 + n;
  const uint64_t buffer_size = file_size - data_start_;

  json header = parse_header(path, reinterpret_cast<const char*>(map_->bytes() + 8), size_t(n));
  for (const auto& [name, value] : header.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) fail(path, "__metadata__ is not a JSON object");
      for (const auto& [k, v] : value.items()) {
        if (!v.is_string()) fail(path, "__metadata__ entry '", k, "' is not a string");
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    entries_.push_back(parse_entry(path, name, value, buffer_size));
  }
  check_coverage(path, entries_, buffer_size);
  std::sort(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (size_t i = 0; i < entries_.size(); ++i) index_[entries_[i].name] = i;
}

bool SafetensorsFile::contains(const std::string& name) const { return index_.count(name) != 0; }

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail(path_, "no tensor named '", name, "'");
  return entries_[it->second];
}

Tensor SafetensorsFile::get(const std::string& name, bool alias) const {
  const SafetensorsEntry& e = entry(name);
  const uint8_t* src = map_->bytes() + data_start_ + e.begin;
  const DType dtype = ember_dtype_for(e.dtype);
  const int64_t n = shape_numel(e.shape);
  const bool same_layout = find_dtype(e.dtype)->file_size == dtype_size(dtype);
  if (alias && same_layout && reinterpret_cast<uintptr_t>(src) % dtype_size(dtype) == 0) {
    auto impl = std::make_shared<TensorImpl>();
    auto keep = map_;  // the Storage holds the mapping until the last view is gone
    impl->storage = std::make_shared<Storage>(const_cast<uint8_t*>(src), size_t(e.end - e.begin), Device::CPU,
                                              [keep](void*) {});
    impl->shape = e.shape;
    impl->strides = contiguous_strides(e.shape);
    impl->dtype = dtype;
    return Tensor(impl).set_name(name);
  }
  Tensor out = Tensor::empty(e.shape, dtype);
  out.set_name(name);
  if (same_layout) {
    if (n > 0) std::memcpy(out.raw_data(), src, size_t(e.end - e.begin));
  } else if (e.dtype == "F16") {
    float* dst = out.data<float>();
    for (int64_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, src + 2 * i, 2);
      dst[i] = half_to_float(h);
    }
  } else if (e.dtype == "I32") {
    int64_t* dst = out.data<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      int32_t v;
      std::memcpy(&v, src + 4 * i, 4);
      dst[i] = v;
    }
  } else {  // U8
    int64_t* dst = out.data<int64_t>();
    for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
  }
  return out;
}

std::map<std::string, Tensor> load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
  SafetensorsFile file(path);
  std::map<std::string, Tensor> out;
  for (const auto& e : file.entries()) out.emplace(e.name, file.get(e.name));
  if (metadata) *metadata = file.metadata();
  return out;
}

}  // namespace ember
