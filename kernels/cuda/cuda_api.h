// ember's CUDA backend, seen from plain C++ (no CUDA headers here, so g++-compiled engine code,
// tests and benchmarks can include it). Every pointer argument named x/y/dx/... is DEVICE memory
// unless the name says host; all buffers are contiguous (NCHW activations, KCRS weights) and every
// launch goes to ember's one stream (kernels/cuda/runtime.h), so calls are ordered with each other.
// Launchers and uploads return without synchronising; copies to the host (memcpy_d2h) synchronise.
// Errors throw std::runtime_error naming the call, file and line.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/conv2d.h"

namespace ember::cuda {

using cpu::Conv2dShape;

// ---- device, memory, copies (runtime.cu) ----
int device_count();  // 0 when there is no driver or no device; never throws
bool cuda_available();
// Why there is no device ("" when there is one): e.g. a driver too old for this CUDA runtime.
std::string cuda_unavailable_reason();
std::string device_name();  // "" without a device
void synchronize();         // waits for ember's stream

void* cuda_alloc(size_t bytes);  // caching allocator; 256-byte aligned; nullptr for 0 bytes
void cuda_free(void* ptr);       // back to the cache (stream-ordered reuse, no cudaFree)
struct AllocatorStats {
  size_t current_bytes = 0;  // handed out to callers (rounded sizes)
  size_t peak_bytes = 0;     // max of current_bytes since start / reset_peak_bytes()
  size_t cached_bytes = 0;   // held in free lists, ready for reuse
  size_t malloc_count = 0;   // cudaMalloc calls made so far
  size_t free_count = 0;     // cudaFree calls made so far (empty_cache, OOM retry)
};
AllocatorStats allocator_stats();
void reset_peak_bytes();
void empty_cache();            // cudaFree every cached block
size_t allocation_size(size_t bytes);  // the size class a request of `bytes` is rounded up to

// Host to device through a pinned staging buffer: returns once src has been copied into it (src may then
// be freed); the DMA runs in stream order. The host waits only for the previous DMA out of the buffer.
void memcpy_h2d(void* dst_device, const void* src_host, size_t bytes);
// The same for small copies (up to 1 MiB; larger ones go to memcpy_h2d) through a ring of 8 pinned
// slots, so a small upload queued behind kernels (the optimizer's table) does not hold up the next
// large one (a batch), and vice versa.
void memcpy_h2d_async(void* dst_device, const void* src_host, size_t bytes);
void memcpy_d2h(void* dst_host, const void* src_device, size_t bytes);  // synchronises
void memcpy_d2d(void* dst_device, const void* src_device, size_t bytes);
void memset_zero(void* dst_device, size_t bytes);
void fill(float* dst, float value, int64_t n);

// ---- conv2d (conv2d_simt.cu, conv2d_tc.cu, conv2d_depthwise.cu, cudnn_ref.cu; dispatch.cpp) ----
// Same contract as kernels/cpu/conv2d.h: outputs are write-only; bias / dbias may be nullptr.
enum class Precision { FP32, TF32, BF16 };  // math precision; storage is always float
enum class ConvAlgo { EmberSimt, EmberTensorCore, Cudnn };
const char* precision_name(Precision p);
const char* conv_algo_name(ConvAlgo a);

void conv2d_forward(ConvAlgo algo, Precision prec, const Conv2dShape& s, const float* x, const float* w,
                    const float* bias, float* y);
void conv2d_backward_data(ConvAlgo algo, Precision prec, const Conv2dShape& s, const float* dy, const float* w,
                          float* dx);
void conv2d_backward_weight(ConvAlgo algo, Precision prec, const Conv2dShape& s, const float* x, const float* dy,
                            float* dw, float* dbias);
// Run-time selected: algorithm from EMBER_CONV=ember_tc|ember_simt|cudnn (registry op "conv"),
// precision from EMBER_CONV_PRECISION=fp32|tf32|bf16 (default fp32). ember_tc at fp32 runs the SIMT
// kernel, because tensor cores have no exact fp32 mode. Under both ember engines, depthwise convs
// (C / groups == 1) run direct FP32 kernels unless EMBER_DEPTHWISE=gemm (registry op "depthwise")
// sends them through the engine's implicit GEMM (tensor cores at tf32/bf16 under ember_tc).
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* bias, float* y);
void conv2d_backward_data(const Conv2dShape& s, const float* dy, const float* w, float* dx);
void conv2d_backward_weight(const Conv2dShape& s, const float* x, const float* dy, float* dw, float* dbias);
ConvAlgo active_conv_algo();
Precision active_conv_precision();
void set_conv_precision(const std::string& name);  // "" restores the environment's choice
// Precision of the dense layers' GEMMs (cuBLAS/cuBLASLt): EMBER_GEMM_PRECISION=fp32|tf32|bf16, default fp32.
Precision active_gemm_precision();
bool cudnn_available();                             // compiled with cuDNN and a device is present
// Registers the variant tables "conv", "depthwise", "conv_tc_depth", "pool", "bn", "bn_slice" with kernels/registry.h (they otherwise register
// on first use) so kernels::set_variant / variants() see them; returns their op names.
std::vector<std::string> cuda_variant_ops();

// ---- pooling (pooling.cu, cudnn_pool_bn.cu; EMBER_POOL=ember|cudnn, registry op "pool") ----
struct Pool2dShape {
  int64_t N = 1, C = 1, H = 1, W = 1;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  bool count_include_pad = true;  // avg pool: divide by the whole window (PyTorch's default) or by its inputs
  int64_t P() const { return (H + 2 * pad_h - kernel_h) / stride_h + 1; }  // floor mode, like PyTorch
  int64_t Q() const { return (W + 2 * pad_w - kernel_w) / stride_w + 1; }
};
// indices[n,c,p,q] = h * W + w of the max inside the (n, c) plane, like PyTorch. Padding is -inf.
// With the cuDNN variant y comes from cuDNN and, when indices != nullptr, ember's kernel fills
// the indices (cuDNN does not expose them), so both backward variants can run after either forward.
void max_pool2d_forward(const Pool2dShape& s, const float* x, float* y, int64_t* indices);
// dx = scatter of dy through indices (ember) or through x/y (cuDNN; ember ignores x and y).
void max_pool2d_backward(const Pool2dShape& s, const float* x, const float* y, const float* dy,
                         const int64_t* indices, float* dx);
// Average pooling divides by kernel_h * kernel_w (count_include_pad, PyTorch's default) or, with
// count_include_pad = false, by the number of the window's positions inside the input.
void avg_pool2d_forward(const Pool2dShape& s, const float* x, float* y);
void avg_pool2d_backward(const Pool2dShape& s, const float* dy, float* dx);
// Adaptive average pooling of `planes` (N * C) H x W planes to OH x OW, PyTorch's bins (adaptive_pool.cu).
void adaptive_avg_pool2d_forward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const float* x, float* y);
void adaptive_avg_pool2d_backward(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, const float* dy,
                                  float* dx);
void global_avg_pool_forward(int64_t N, int64_t C, int64_t HW, const float* x, float* y);  // y[N,C]
void global_avg_pool_backward(int64_t N, int64_t C, int64_t HW, const float* dy, float* dx);

// ---- batch norm per channel over (N, H, W) (batchnorm.cu, cudnn_pool_bn.cu; EMBER_BN=ember|cudnn, op "bn") ----
struct BatchNormArgs {
  int64_t N = 1, C = 1, HW = 1;
  float eps = 1e-5f, momentum = 0.1f;  // running = (1 - momentum) * running + momentum * batch
  bool relu = false;                   // fused ReLU after the affine transform
};
// Training: y = relu?(gamma * (x - mean) * invstd + beta); saves mean and invstd = 1/sqrt(var + eps)
// (biased var); running_var is updated with the unbiased var, like PyTorch. running_* may be nullptr.
void batchnorm_forward_train(const BatchNormArgs& a, const float* x, const float* gamma, const float* beta,
                             float* y, float* save_mean, float* save_invstd, float* running_mean,
                             float* running_var);
void batchnorm_forward_eval(const BatchNormArgs& a, const float* x, const float* gamma, const float* beta,
                            const float* running_mean, const float* running_var, float* y);
// y is the training forward's output; with relu its sign masks dy. dgamma/dbeta are write-only.
void batchnorm_backward(const BatchNormArgs& a, const float* x, const float* y, const float* dy,
                        const float* gamma, const float* save_mean, const float* save_invstd, float* dx,
                        float* dgamma, float* dbeta);

// ---- elementwise (elementwise.cu) ----
enum class BinaryOp { Add, Sub, Mul, Div };
enum class UnaryOp { Neg, Exp, Log, Sqrt, Tanh, Sigmoid, Relu, Abs, Sign };
constexpr int kMaxDims = 8;
// out[i] (contiguous, `shape`) = a[...] op b[...]; strides are in elements, 0 broadcasts a dimension.
struct BroadcastArgs {
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t a_strides[kMaxDims] = {};
  int64_t b_strides[kMaxDims] = {};
};
void binary(BinaryOp op, const BroadcastArgs& args, const float* a, const float* b, float* out);
void binary_contiguous(BinaryOp op, int64_t n, const float* a, const float* b, float* out);  // float4 path
void unary(UnaryOp op, int64_t n, const float* x, float* y);
void relu_backward(int64_t n, const float* y, const float* dy, float* dx);  // dx = dy * (y > 0)
void pow_scalar(int64_t n, float exponent, const float* x, float* y);       // y = powf(x, exponent)
void axpby(int64_t n, float alpha, const float* x, float beta, float* y);   // y = alpha x + beta y
void float_to_bf16(int64_t n, const float* x, uint16_t* y);                 // round to nearest even
void bf16_to_float(int64_t n, const uint16_t* x, float* y);

// ---- strided copies (copy.cu) ----
// dst[at dst_strides] = src[at src_strides] for every index of `shape` (strides in elements): the copy_
// between views of any layout (a transposed tensor made contiguous, a tensor written into a slice).
// Elements of 1, 2, 4 or 8 bytes are copied as bits, so any dtype works and nothing is converted.
struct StridedCopyArgs {
  int ndim = 0;
  int64_t shape[kMaxDims] = {};
  int64_t dst_strides[kMaxDims] = {};
  int64_t src_strides[kMaxDims] = {};
};
// Drops size-1 dims and merges neighbours that are contiguous in both views (a [N, C, H, W] slice
// copy becomes at most 3 dims); throws if more than kMaxDims remain.
StridedCopyArgs make_strided_copy(const std::vector<int64_t>& shape, const std::vector<int64_t>& dst_strides,
                                  const std::vector<int64_t>& src_strides);
void copy_strided(const StridedCopyArgs& a, size_t elem_size, const void* src, void* dst);
// The kernel's per-element work on the host (tests check the index math without a GPU).
void host_emulate_copy_strided(const StridedCopyArgs& a, size_t elem_size, const void* src, void* dst);
// ---- element type conversion (convert.cu) ----
// dst[i] = src[i] converted through double, bit for bit as the CPU's Tensor::copy_ (int64 truncates,
// bfloat16 rounds to nearest even); contiguous arrays of n elements.
enum class ElemType { F32, F64, I64, BF16 };
void convert(int64_t n, ElemType from, ElemType to, const void* src, void* dst);
void host_emulate_convert(int64_t n, ElemType from, ElemType to, const void* src, void* dst);  // tests
// ---- reductions over one dim of a contiguous [outer, dim, inner] view (reduce.cu) ----
enum class ReduceOp { Sum, Mean, Max };
// out[outer, inner]; argmax (Max only, may be nullptr) gets the index along dim of the first max.
void reduce_dim(ReduceOp op, int64_t outer, int64_t dim, int64_t inner, const float* x, float* out,
                int64_t* argmax);
// The backward of max along dim: dx[outer, index[o, i], inner] = dy[o, i] and 0 elsewhere (dx is
// write-only; every element is written).
void scatter_along_dim(int64_t outer, int64_t dim, int64_t inner, const float* dy, const int64_t* index, float* dx);

// ---- fused softmax + cross-entropy over logits[N, C] (softmax_xent.cu) ----
// PyTorch's cross_entropy: row loss l_i = (1 - eps) w[t_i] nll_i(t_i) + eps / C sum_c w[c] nll_i(c) with
// nll_i(c) = -log softmax(x_i)[c] (eps = label smoothing), 0 for rows with t_i == ignore_index;
// weights may be nullptr (all 1). Mean = sum_i l_i / sum_i w[t_i] over counted rows, Sum, or None
// (the row losses themselves).
enum class XentReduction { Mean, Sum, None };
struct XentArgs {
  int64_t N = 0, C = 0;
  int64_t ignore_index = -100;
  float label_smoothing = 0.f;
  XentReduction reduction = XentReduction::Mean;
};
// row_loss[N] gets l_i; loss (device scalar, unused for None) the mean or sum. Saves the row
// log-sum-exp and the total weight for the backward. Throws (after one small sync) on a target
// outside [0, C) that is not ignore_index.
void softmax_xent_forward(const XentArgs& a, const float* logits, const int64_t* targets, const float* weights,
                          float* row_loss, float* loss, float* row_lse, float* total_weight);
// dlogits for incoming gradient dloss ([N] for None, a device scalar otherwise; nullptr = 1).
void softmax_xent_backward(const XentArgs& a, const float* logits, const int64_t* targets, const float* weights,
                           const float* row_lse, const float* total_weight, const float* dloss, float* dlogits);
// The kernels' per-row formulas on host arrays (tests without a GPU); dloss and loss as above.
void host_emulate_softmax_xent(const XentArgs& a, const float* logits, const int64_t* targets, const float* weights,
                               const float* dloss, float* row_loss, float* loss, float* dlogits);

// ---- dropout (dropout.cu), Philox mapping of kernels/philox.h ----
// mask[i] = keep ? 1 : 0; y = x * mask / (1 - p). The caller advances its offset by ceil(n / 4).
void dropout_forward(int64_t n, float p, uint64_t seed, uint64_t offset, const float* x, float* y, uint8_t* mask);
void dropout_backward(int64_t n, float p, const uint8_t* mask, const float* dy, float* dx);

// ---- fused multi-tensor optimizers (optimizer.cu): one launch for all parameter tensors ----
struct SgdArgs {
  float lr = 0.01f, momentum = 0.9f, dampening = 0.f, weight_decay = 0.f;
  bool nesterov = false;
  bool first_step = false;  // PyTorch initialises the momentum buffer to the first gradient
};
// Host arrays of `count` device pointers / sizes. momentum_bufs unused when momentum == 0.
void sgd_step(const SgdArgs& a, int count, float* const* params, const float* const* grads,
              float* const* momentum_bufs, const int64_t* sizes);
struct AdamWArgs {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 1e-2f;
  int64_t step = 1;  // 1-based step count after this update (bias correction)
};
void adamw_step(const AdamWArgs& a, int count, float* const* params, const float* const* grads,
                float* const* exp_avg, float* const* exp_avg_sq, const int64_t* sizes);

// ---- GEMM through cuBLAS (gemm_cublas.cu), row-major like kernels/cpu/gemm.h ----
void sgemm(Precision prec, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
// cuBLASLt path with an optional fused bias (bias[N] added to every row; nullptr for none), beta = 0.
void sgemm_lt_bias(Precision prec, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, const float* A,
                   int64_t lda, const float* B, int64_t ldb, const float* bias, float* C, int64_t ldc);

}  // namespace ember::cuda
