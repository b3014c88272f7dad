// Names every built-in variant table so that listing ops (ember kernels, the variant checker)
// sees all of them, even in a static link where an unused table's object file would be dropped.
#include "kernels/cpu/batchnorm.h"
#include "kernels/cpu/conv2d.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/pool.h"

namespace ember::kernels::detail {

void ensure_builtin_tables() {
  static const bool done = [] {
    cpu::sgemm_table();
    cpu::conv2d_fwd_table();
    cpu::conv2d_bwd_data_table();
    cpu::conv2d_bwd_weight_table();
    cpu::max_pool2d_table();
    cpu::avg_pool2d_table();
    cpu::adaptive_avg_pool2d_table();
    cpu::batchnorm_table();
    return true;
  }();
  (void)done;
}

}  // namespace ember::kernels::detail
