// How the implicit-GEMM tile engines (conv2d_simt.cu, conv2d_tc.cu) bring a depth slice of A and B
// from global memory into shared memory. Written once, __host__ __device__, so the host emulation
// (conv2d_common.cu) runs the same thread-to-element mapping and bounds checks on the CPU.
//
// Two choices matter for speed:
// - Which way a warp walks a tile. Consecutive threads should read consecutive addresses. For the
//   forward's A (pixels of x) those are consecutive rows; for w and for both operands of the weight
//   gradient (runs of dy and x along the N*P*Q depth) they are consecutive depth indices. Each
//   problem says which (kAAlongDepth, kBAlongDepth in conv2d_gemm.cuh). With one fixed walk, the
//   weight gradient's loads were strided by P*Q floats across a warp: 32 transactions per load.
// - Register double buffering. A thread fetches its elements of the next slice into registers
//   before the multiply-adds on the current one and stores them to the other shared buffer after,
//   so the global loads' latency hides behind the math (one barrier per slice instead of two).
#pragma once

// Unrolled on the device (the staged values must stay in registers); the host pass, which compiles
// these functions too for the emulation, does not know the pragma.
#ifdef __CUDA_ARCH__
#define EMBER_TILE_UNROLL _Pragma("unroll")
#else
#define EMBER_TILE_UNROLL
#endif

namespace ember::cuda::conv {

// Tile shapes of the two engines: an M x N output tile per block of `Threads`, depth slices of K.
struct SimtTiles {
  static constexpr int M = 64, N = 64, K = 16, Threads = 256;
};
// The tensor-core engine in two slice depths, chosen at run time (EMBER_CONV_TC_DEPTH=k32|k16): a
// deeper slice halves the barriers per output tile, a shallower one halves the staged registers
// (16 instead of 32 floats per thread), which can buy a fourth block per SM.
template <int Depth>
struct TcTilesOfDepth {
  static constexpr int M = 64, N = 64, K = Depth, Threads = 128;
};
using TcTiles = TcTilesOfDepth<32>;
using TcTilesShallow = TcTilesOfDepth<16>;

// One operand's share of a depth slice for one thread: an Extent x Depth tile (Extent = the tile's
// rows for A, its columns for B), `Per` elements per thread.
template <int Extent, int Depth, int Threads, bool AlongDepth>
struct TileStage {
  static_assert(Extent * Depth % Threads == 0, "tile must split evenly over the threads");
  static constexpr int Per = Extent * Depth / Threads;
  float v[Per];

  // Element i of thread tid: position e along the extent and d along the depth. AlongDepth: a warp
  // covers consecutive depth indices (then the next extent position); else consecutive extents.
  __host__ __device__ static void coords(int tid, int i, int& e, int& d) {
    const int idx = tid + i * Threads;
    if (AlongDepth) {
      d = idx % Depth, e = idx / Depth;
    } else {
      e = idx % Extent, d = idx / Extent;
    }
  }
  template <class Get>  // get(e, d) -> float
  __host__ __device__ void fetch(int tid, Get get) {
EMBER_TILE_UNROLL
    for (int i = 0; i < Per; ++i) {
      int e, d;
      coords(tid, i, e, d);
      v[i] = get(e, d);
    }
  }
  template <class Put>  // put(e, d, value)
  __host__ __device__ void stash(int tid, Put put) const {
EMBER_TILE_UNROLL
    for (int i = 0; i < Per; ++i) {
      int e, d;
      coords(tid, i, e, d);
      put(e, d, v[i]);
    }
  }
};

// A thread's staged elements of A (M x K) and B (N x K) for one depth slice [k0, k0 + K) of the
// block's tile at (row0, col0), zero outside the GEMM (rows, cols, or past k_end).
template <class Tiles, class Problem>
struct OperandStages {
  TileStage<Tiles::M, Tiles::K, Tiles::Threads, Problem::kAAlongDepth> a;
  TileStage<Tiles::N, Tiles::K, Tiles::Threads, Problem::kBAlongDepth> b;

  __host__ __device__ void fetch(const Problem& prob, int tid, int grp, int row0, int col0, int k0, int k_end) {
    const int rows = prob.rows(), cols = prob.cols();
    a.fetch(tid, [&](int r, int d) {
      const int row = row0 + r, k = k0 + d;
      return row < rows && k < k_end ? prob.a(grp, row, k) : 0.f;
    });
    b.fetch(tid, [&](int c, int d) {
      const int col = col0 + c, k = k0 + d;
      return col < cols && k < k_end ? prob.b(grp, k, col) : 0.f;
    });
  }
};

}  // namespace ember::cuda::conv
