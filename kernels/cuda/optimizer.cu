// Fused multi-tensor SGD-momentum and AdamW: every parameter tensor is cut into chunks of
// kChunk elements and ONE launch processes the whole chunk list (block b takes chunks b,
// b + gridDim.x, ...), instead of one small launch per tensor. The tensor and chunk tables are
// uploaded to a scratch buffer from the caching allocator; freeing it right after the launch is
// safe because the allocator's reuse is ordered on ember's one stream.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cuda/runtime.h"

namespace ember::cuda {
namespace {

constexpr int64_t kChunk = 16384;

struct TensorSlot {
  float* param;
  const float* grad;
  float* state0;  // SGD: momentum buffer; AdamW: exp_avg
  float* state1;  // AdamW: exp_avg_sq
  int64_t size;
};
struct Chunk {
  int tensor;
  int64_t begin;
};

struct ChunkTable {
  int num_chunks = 0;
  TensorSlot* slots = nullptr;  // device
  Chunk* chunks = nullptr;      // device
};

// Builds the chunk list on the host and uploads [slots | chunks] in one copy.
class UploadedTable {
 public:
  explicit UploadedTable(const std::vector<TensorSlot>& slots) {
    std::vector<Chunk> chunks;
    for (int t = 0; t < int(slots.size()); ++t)
      for (int64_t b = 0; b < slots[t].size; b += kChunk) chunks.push_back({t, b});
    const size_t slot_bytes = (slots.size() * sizeof(TensorSlot) + 255) / 256 * 256;
    const size_t bytes = slot_bytes + chunks.size() * sizeof(Chunk);
    std::vector<unsigned char> host(bytes);
    std::memcpy(host.data(), slots.data(), slots.size() * sizeof(TensorSlot));
    std::memcpy(host.data() + slot_bytes, chunks.data(), chunks.size() * sizeof(Chunk));
    buffer_ = static_cast<unsigned char*>(cuda_alloc(bytes));
    memcpy_h2d_async(buffer_, host.data(), bytes);  // no wait for the backward still queued
    table_.num_chunks = int(chunks.size());
    table_.slots = reinterpret_cast<TensorSlot*>(buffer_);
    table_.chunks = reinterpret_cast<Chunk*>(buffer_ + slot_bytes);
  }
  ~UploadedTable() { cuda_free(buffer_); }
  const ChunkTable& table() const { return table_; }

 private:
  unsigned char* buffer_ = nullptr;
  ChunkTable table_;
};

__global__ void sgd_kernel(ChunkTable table, SgdArgs a) {
  for (int c = blockIdx.x; c < table.num_chunks; c += gridDim.x) {
    const Chunk chunk = table.chunks[c];
    const TensorSlot t = table.slots[chunk.tensor];
    const int64_t end = min(chunk.begin + kChunk, t.size);
    for (int64_t i = chunk.begin + threadIdx.x; i < end; i += blockDim.x) {
      float g = t.grad[i] + a.weight_decay * t.param[i];
      if (a.momentum != 0.f) {
        const float buf = a.first_step ? g : a.momentum * t.state0[i] + (1.f - a.dampening) * g;
        t.state0[i] = buf;
        g = a.nesterov ? g + a.momentum * buf : buf;
      }
      t.param[i] -= a.lr * g;
    }
  }
}

__global__ void adamw_kernel(ChunkTable table, AdamWArgs a, float bias_correction1, float bias_correction2) {
  for (int c = blockIdx.x; c < table.num_chunks; c += gridDim.x) {
    const Chunk chunk = table.chunks[c];
    const TensorSlot t = table.slots[chunk.tensor];
    const int64_t end = min(chunk.begin + kChunk, t.size);
    for (int64_t i = chunk.begin + threadIdx.x; i < end; i += blockDim.x) {
      const float g = t.grad[i];
      float p = t.param[i] * (1.f - a.lr * a.weight_decay);  // decoupled weight decay
      const float m = a.beta1 * t.state0[i] + (1.f - a.beta1) * g;
      const float v = a.beta2 * t.state1[i] + (1.f - a.beta2) * g * g;
      t.state0[i] = m;
      t.state1[i] = v;
      p -= a.lr * (m / bias_correction1) / (sqrtf(v / bias_correction2) + a.eps);
      t.param[i] = p;
    }
  }
}

unsigned grid_for(int num_chunks) { return unsigned(std::max(1, std::min(num_chunks, 65535))); }

}  // namespace

void sgd_step(const SgdArgs& a, int count, float* const* params, const float* const* grads,
              float* const* momentum_bufs, const int64_t* sizes) {
  if (count <= 0) return;
  std::vector<TensorSlot> slots(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    EMBER_CUDA_REQUIRE(sizes[i] >= 0, "sgd_step: tensor " + std::to_string(i) + " has negative size");
    EMBER_CUDA_REQUIRE(a.momentum == 0.f || momentum_bufs, "sgd_step: momentum != 0 needs momentum buffers");
    slots[i] = {params[i], grads[i], momentum_bufs ? momentum_bufs[i] : nullptr, nullptr, sizes[i]};
  }
  UploadedTable upload(slots);
  if (upload.table().num_chunks == 0) return;
  sgd_kernel<<<grid_for(upload.table().num_chunks), 256, 0, stream()>>>(upload.table(), a);
  EMBER_CUDA_CHECK_LAUNCH();
}

void adamw_step(const AdamWArgs& a, int count, float* const* params, const float* const* grads,
                float* const* exp_avg, float* const* exp_avg_sq, const int64_t* sizes) {
  if (count <= 0) return;
  EMBER_CUDA_REQUIRE(a.step >= 1, "adamw_step: step must be >= 1 (1-based), got " + std::to_string(a.step));
  std::vector<TensorSlot> slots(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    EMBER_CUDA_REQUIRE(sizes[i] >= 0, "adamw_step: tensor " + std::to_string(i) + " has negative size");
    slots[i] = {params[i], grads[i], exp_avg[i], exp_avg_sq[i], sizes[i]};
  }
  UploadedTable upload(slots);
  if (upload.table().num_chunks == 0) return;
  const float bc1 = float(1.0 - std::pow(double(a.beta1), double(a.step)));
  const float bc2 = float(1.0 - std::pow(double(a.beta2), double(a.step)));
  adamw_kernel<<<grid_for(upload.table().num_chunks), 256, 0, stream()>>>(upload.table(), a, bc1, bc2);
  EMBER_CUDA_CHECK_LAUNCH();
}

}  // namespace ember::cuda
