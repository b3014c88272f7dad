#!/usr/bin/env bash
# Guards the register blocking of the AVX-512 direct convolution kernels: compiles them to assembly
# with the build's compiler and flags and fails if any block function (run_block<...>) touches the
# stack. Their accumulators must live in zmm registers for the whole block; GCC once kept them in a
# stack array instead (SRA ran before the loops were unrolled), which cost conv1_1 16-19% with no
# test noticing. See kernels/cpu/conv2d_direct_avx512.cpp, run_block.
#
# usage: tools/check-register-blocks.sh CXX SOURCE_DIR
# Exits 77 (CTest: skipped) when the compiler is not GCC: the pragmas and the symptom are GCC's.
set -euo pipefail
cxx=${1:?compiler}
src=${2:?source dir}
macros=$("$cxx" -dM -E -x c++ /dev/null)
if grep -q __clang__ <<<"$macros" || ! grep -q __GNUC__ <<<"$macros"; then
  echo "SKIP: $cxx is not GCC; this check reads GCC's assembly"
  exit 77
fi
flags=(-O3 -DNDEBUG -std=c++20 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mavx2 -fopenmp -I"$src" -S -o -)
status=0
for file in kernels/cpu/conv2d_direct_avx512.cpp kernels/cpu/conv2d_direct_f23_avx512.cpp kernels/cpu/conv2d_direct_wgrad_avx512.cpp; do
  asm=$("$cxx" "${flags[@]}" "$src/$file")
  # One line per block function: its name and how many instructions address the stack.
  report=$(awk '
    /^_Z[A-Za-z0-9_]*run_block[A-Za-z0-9_]*:$/ { name = $0; count = 0; inside = 1; next }
    inside && /\(%rsp\)|\(%rbp\)/ { count++ }
    inside && /\.cfi_endproc/ { print name, count; inside = 0 }
  ' <<<"$asm")
  blocks=$(wc -l <<<"$report")
  if [ -z "$report" ]; then
    echo "FAIL: $file: no run_block functions found in the assembly (renamed? inlined?)"
    status=1
    continue
  fi
  spilled=$(awk '$2 > 0' <<<"$report")
  if [ -n "$spilled" ]; then
    echo "FAIL: $file: block functions that address the stack (name, instructions):"
    echo "$spilled"
    status=1
  else
    echo "ok: $file: $blocks block functions, none touches the stack"
  fi
done
exit $status
