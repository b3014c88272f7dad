// Writing safetensors atomically. A crash or a full disk in the middle of a save must never leave a
// half-written file where the previous good one was, so every save goes to a temporary file in the
// same directory (rename is only atomic within one file system), is fsync'ed, and is then renamed
// over the target; fsync of the directory makes the rename itself durable.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <nlohmann/json.hpp>

#include "nn/safetensors.h"

namespace ember {
namespace {

std::string parent_dir(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string temp_path_for(const std::string& path) {
  static std::atomic<uint64_t> counter{0};
  auto slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "" : path.substr(0, slash + 1);
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  return dir + "." + base + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

[[noreturn]] void fail_io(const std::string& path, const std::string& what, int err) {
  throw Error(detail::cat("save '", path, "': ", what, ": ", std::strerror(err)));
}

void write_all(int fd, const void* data, size_t n, const std::string& path, const std::string& tmp) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail_io(path, "writing temporary file '" + tmp + "' failed", errno);
    }
    p += w;
    n -= size_t(w);
  }
}

}  // namespace

const char* safetensors_dtype_tag(DType dtype) {
  switch (dtype) {
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
    case DType::Int64: return "I64";
    case DType::BFloat16: return "BF16";
  }
  return "?";
}

void write_file_atomically(const std::string& path, const std::vector<std::pair<const void*, size_t>>& chunks) {
  const std::string tmp = temp_path_for(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) fail_io(path, "cannot create temporary file '" + tmp + "'", errno);
  try {
    for (const auto& [data, n] : chunks) write_all(fd, data, n, path, tmp);
    if (::fsync(fd) != 0) fail_io(path, "fsync of '" + tmp + "' failed", errno);
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail_io(path, "closing temporary file '" + tmp + "' failed", err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    fail_io(path, "renaming '" + tmp + "' over it failed", err);
  }
  // Durability of the rename itself; failure here does not undo the (already visible) file.
  int dfd = ::open(parent_dir(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) {
    nlohmann::json meta = nlohmann::json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = meta;
  }
  // std::map iterates in name order, which is also the order of the data in the buffer.
  std::vector<Tensor> packed;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    EMBER_CHECK(name != "__metadata__", "save_safetensors '", path, "': '__metadata__' is reserved, not a tensor name");
    EMBER_CHECK(t.defined(), "save_safetensors '", path, "': tensor '", name, "' is undefined");
    Tensor c = t.detach().to(Device::CPU).contiguous();
    header[name] = {{"dtype", safetensors_dtype_tag(c.dtype())},
                    {"shape", c.shape()},
                    {"data_offsets", {offset, offset + c.nbytes()}}};
    offset += c.nbytes();
    packed.push_back(c);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the buffer 8-byte aligned in the file
  uint8_t len[8];
  for (int i = 0; i < 8; ++i) len[i] = uint8_t(uint64_t(text.size()) >> (8 * i));

  std::vector<std::pair<const void*, size_t>> chunks = {{len, 8}, {text.data(), text.size()}};
  for (const auto& c : packed)
    if (c.nbytes() > 0) chunks.emplace_back(c.raw_data(), c.nbytes());
  write_file_atomically(path, chunks);
}

}  // namespace ember
