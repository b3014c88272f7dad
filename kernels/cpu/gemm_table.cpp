// The "gemm" variant table: AVX-512, AVX2 and the plain reference, fastest first.
#include "kernels/cpu/gemm.h"

namespace ember::cpu {

// Defined in gemm_avx512.cpp / gemm_avx2.cpp (compiled with their ISA flags; only called after CPUID).
void sgemm_avx512(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float,
                  float*, int64_t);
void sgemm_avx2(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*, int64_t, float,
                float*, int64_t);

SgemmPacked sgemm_packed_avx512();
SgemmPacked sgemm_packed_avx2();

SgemmPacked sgemm_packed() {
  const SgemmFn active = sgemm_table().get();
  if (active == &sgemm_avx512) return sgemm_packed_avx512();
  if (active == &sgemm_avx2) return sgemm_packed_avx2();
  return {kPackedRefTile, kPackedRefTile, &sgemm_packed_ref};
}

kernels::VariantTable<SgemmFn>& sgemm_table() {
  static kernels::VariantTable<SgemmFn> table("gemm", {
                                                          {"avx512", &sgemm_avx512, &kernels::has_avx512},
                                                          {"avx2", &sgemm_avx2, &kernels::has_avx2},
                                                          {"ref", &gemm_ref<float>, nullptr},
                                                      });
  return table;
}

namespace {
// Build the table at load time so that kernels::variants("gemm") works before the first sgemm call.
[[maybe_unused]] const bool registered_at_load = (sgemm_table(), true);
}  // namespace

}  // namespace ember::cpu
