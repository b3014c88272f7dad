#!/usr/bin/env bash
# Builds ember with AddressSanitizer + UndefinedBehaviorSanitizer (gcc, CPU only) in build-asan
# and runs a chosen subset of the CPU test suite under it. Any sanitizer report fails the test.
#
# The subset (SUITES below) is every CPU unit test EXCEPT the ones that spend minutes in float
# arithmetic and add no new code paths under a sanitizer:
#   test_e2e_training, test_driver_e2e, test_driver_explain  full training runs (each path is also
#                                                            hit by the driver/trainer unit tests)
#   test_models_golden, test_mobilenet_pretrained            torch goldens / pretrained MobileNet
#                                                            (Python in the loop; same kernels as
#                                                            test_nn_modules / test_conv_kernels)
#   test_data_shared, test_docs_commands                     read ../shared or run the CLI on it
# What stays covers every parser and loader (csv, configs, images, safetensors, checkpoints, the
# bad-input corpus replay), every op's forward/backward, kernels, optimizers and the training
# safety tests. Measured: see docs/hardening.md (< 15 min on 2 cores, build included).
#
# Usage: tools/sanitize.sh [build-dir]   (default build-asan; EMBER_JOBS overrides -j2)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$repo/build-asan}"
jobs="${EMBER_JOBS:-2}"

targets=(test_autograd test_tensor_views test_rng test_ops_gradcheck test_loss_ops test_softmax_dropout
         test_pool_bn_ops test_gemm_kernels test_conv_kernels test_nn_modules test_optim test_safetensors
         test_checkpoint test_checkpoint_crash test_bad_input test_data_config test_data_csv test_data_image
         test_data_loader test_data_preprocess test_data_split test_driver_metrics test_driver_report
         test_driver_safety test_driver_predict test_corpus_replay test_cpu_allocator)
# GoogleTest suite names of those executables (ctest names tests "Suite.Case").
suites="Autograd|Access|DTypes|Factories|InPlace|Views|Distributions|Generator|Permutation|Philox"
suites+="|Forward[A-Za-z]*|Gradcheck[A-Za-z0-9]*|BceWithLogits|CrossEntropy|RegressionLosses|Dropout|Softmax"
suites+="|AdaptiveAvgPool2d|AvgPool2d|BatchNorm|BatchNormKernels|MaxPool2d|Pool2d|PoolKernels"
suites+="|GemmDriver|GemmVariants|ConvReference|ConvVariants|NnInit|NnLayers|NnModels|NnModule|Optim"
suites+="|Safetensors|SafetensorsErrors|Checkpoint|ResumeTest|CheckpointCrash|BadInput"
suites+="|DataConfig|DataDatasetTest|DataFilename|DataCsv|DataImage|DataImageCache|DataLoaderErrors"
suites+="|SyntheticTest|DataPreprocess|DataSplit|DriverMetrics|DriverReport|DriverSafety|DriverPredict|CorpusReplay|CpuAllocator"

cmake -S "$repo" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DEMBER_SANITIZE=ON -DEMBER_CUDA=OFF -DEMBER_BUILD_BENCH=OFF -DEMBER_BUILD_APPS=ON
cmake --build "$build" --target "${targets[@]}" -j"$jobs"

# halt_on_error + abort: a finding fails the test instead of being printed and ignored. Leak
# checking is on (the default on Linux). OpenMP threads stay at 2 (the machine's cores).
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
cd "$build"
ctest -R "^([A-Za-z0-9_]+/)?($suites)\\." --output-on-failure -j"$jobs" --timeout 600
