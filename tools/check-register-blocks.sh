#!/usr/bin/env bash
# Guards the register blocking of the AVX-512 direct convolution kernels and of the Winograd weight
# gradient's dot products: compiles them to assembly with the build's compiler and flags and fails if
# any block function (run_block<...>, dot_block<...>) touches the stack. Their accumulators must live in zmm registers for the whole block; GCC once kept them in a
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
common=(-O3 -DNDEBUG -std=c++20 -fopenmp -I"$src" -S -o -)
avx512=(-mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mavx2)
avx2=(-mavx2 -mfma)
status=0
# file, block function name, ISA flags (as CMake gives them by file suffix)
checks=(
  "kernels/cpu/conv2d_direct_avx512.cpp run_block avx512"
  "kernels/cpu/conv2d_direct_f23_avx512.cpp run_block avx512"
  "kernels/cpu/conv2d_direct_wgrad_avx512.cpp run_block avx512"
  "kernels/cpu/conv2d_direct_f23_wgrad_avx512.cpp run_block avx512"
  "kernels/cpu/conv2d_direct_f23_wgrad_avx512.cpp run_pair avx512"
  "kernels/cpu/conv2d_winograd_wgrad_avx2.cpp dot_block avx2"
)
for check in "${checks[@]}"; do
  read -r file block isa <<<"$check"
  if [ "$isa" = avx512 ]; then isa_flags=("${avx512[@]}"); else isa_flags=("${avx2[@]}"); fi
  asm=$("$cxx" "${common[@]}" "${isa_flags[@]}" "$src/$file")
  # One line per block function: its name and how many instructions address the stack.
  report=$(awk -v block="$block" '
    /^_Z[A-Za-z0-9_.]*:$/ && index($0, block) { name = $0; count = 0; inside = 1; next }
    inside && /\(%rsp\)|\(%rbp\)/ && /%[yz]mm/ { count++ }  # vector data on the stack (not GPRs, even moved via xmm)
    inside && /\.cfi_endproc/ { print name, count; inside = 0 }
  ' <<<"$asm")
  blocks=$(wc -l <<<"$report")
  if [ -z "$report" ]; then
    echo "FAIL: $file: no $block functions found in the assembly (renamed? inlined?)"
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
