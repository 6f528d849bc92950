// Winsorized sums of per-example outer-product gradients d_i a_i^T (the weight gradients
// of a linear layer), without materializing the B x J x K tensor: one pass over the
// examples keeps, for L coordinates at a time, the c+1 largest and the c+1 smallest
// values in registers (a branch-free insertion network). The winsorized sum is then
//   sum - (c largest) - (c smallest) + c * ((c+1)-th largest + (c+1)-th smallest),
// which equals the sum of the clipped values, ties included, whenever B >= 2c + 2.
// Examples with d_ij = 0 (ReLU units that are off) give the value 0 for the whole row:
// they are entered into the buffers once, as zeros, instead of being looped over.
// A second entry point gives the clipping bounds of each column of a B x J matrix, for
// the bias gradients (there d_i itself is the per-example gradient).
#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

namespace {
// One vector is one register of the instruction set the kernel is built for. With
// 64-byte vectors an AVX2 build splits each into two of its 16 registers, and the
// 2(c+1) buffers spill to memory from c = 3 on; one register each keeps c <= 5 in
// registers on AVX2 and c <= 8 on AVX-512 (32 registers). Each lane still sums its
// coordinate over the examples in order, so the width does not change any number.
#if defined(__AVX512F__)
constexpr int L = 16;
#elif defined(__AVX__)
constexpr int L = 8;
#else
constexpr int L = 4;
#endif
typedef float vec __attribute__((vector_size(4 * L)));

inline vec vmax(vec a, vec b) { return a > b ? a : b; }
inline vec vmin(vec a, vec b) { return a < b ? a : b; }

// Registers the one-pass loop holds: 2(c+1) buffers, the sum, v, w, a_i and d_i. Where
// they do not fit (c >= 5 on AVX2's 16 registers), the largest and the smallest values
// are found in two passes over the examples instead, each with half the buffers: the
// loads are repeated, the spills avoided. The numbers are the same either way.
constexpr int kRegisters = L == 16 ? 32 : 16;

// Inserts v into the sorted buffer buf[0..C] (descending when Top, else ascending).
template <int C, bool Top>
inline void insert(vec* buf, vec v) {
#pragma GCC unroll 9
  for (int t = 0; t <= C; ++t) {
    const vec keep = Top ? vmax(buf[t], v) : vmin(buf[t], v);
    v = Top ? vmin(buf[t], v) : vmax(buf[t], v);
    buf[t] = keep;
  }
}

template <int C>
void row(const float* dj, const float* a, float* out, int B, int K, int* live) {
  // dj: the B values of row j; a: B x K with K a multiple of L; out: K values.
  const float inf = std::numeric_limits<float>::infinity();
  constexpr bool one_pass = 2 * (C + 1) + 5 <= kRegisters;
  int n = 0;
  for (int i = 0; i < B; ++i)
    if (dj[i] != 0.f) live[n++] = i;
  const int zeros = std::min(B - n, C + 1);
  for (int k0 = 0; k0 < K; k0 += L) {
    vec top[C + 1], bot[C + 1], sum = {};
    for (int t = 0; t <= C; ++t) {
      top[t] = vec{} + (t < zeros ? 0.f : -inf);
      bot[t] = vec{} + (t < zeros ? 0.f : inf);
    }
    for (int r = 0; r < n; ++r) {
      const int i = live[r];
      vec ai;
      std::memcpy(&ai, a + (long)i * K + k0, sizeof(vec));
      const vec v = dj[i] * ai;
      sum += v;
      insert<C, true>(top, v);
      if (one_pass) insert<C, false>(bot, v);
    }
    if (!one_pass) {
      for (int r = 0; r < n; ++r) {
        const int i = live[r];
        vec ai;
        std::memcpy(&ai, a + (long)i * K + k0, sizeof(vec));
        insert<C, false>(bot, dj[i] * ai);
      }
    }
    vec s = sum;
    for (int t = 0; t < C; ++t) s -= top[t] + bot[t];
    s += (float)C * (top[C] + bot[C]);
    std::memcpy(out + k0, &s, sizeof(vec));
  }
}

template <int C>
void run(const float* d, const float* a, float* out, int B, int J, int K, int threads) {
#pragma omp parallel num_threads(threads)
  {
    std::vector<int> live(B);
#pragma omp for schedule(static)
    for (int j = 0; j < J; ++j) row<C>(d + (long)j * B, a, out + (long)j * K, B, K, live.data());
  }
}

// The (c+1)-th largest and smallest of each column of d (B x J, J a multiple of L): the
// bounds a winsorized bias gradient clips to. Zeros count as values here.
template <int C>
void bounds(const float* d, float* hi, float* lo, int B, int J) {
  const float inf = std::numeric_limits<float>::infinity();
  for (int j0 = 0; j0 < J; j0 += L) {
    vec top[C + 1], bot[C + 1];
    for (int t = 0; t <= C; ++t) {
      top[t] = vec{} - inf;
      bot[t] = vec{} + inf;
    }
    for (int i = 0; i < B; ++i) {
      vec v;
      std::memcpy(&v, d + (long)i * J + j0, sizeof(vec));
      insert<C, true>(top, v);
      insert<C, false>(bot, v);
    }
    std::memcpy(hi + j0, &top[C], sizeof(vec));
    std::memcpy(lo + j0, &bot[C], sizeof(vec));
  }
}

// Calls f with c as a compile-time constant (std::integral_constant); false when c is
// outside 1..8, the clip levels the kernels are instantiated for.
template <class F>
bool with_clip(int c, F&& f) {
  switch (c) {
    case 1: f(std::integral_constant<int, 1>{}); return true;
    case 2: f(std::integral_constant<int, 2>{}); return true;
    case 3: f(std::integral_constant<int, 3>{}); return true;
    case 4: f(std::integral_constant<int, 4>{}); return true;
    case 5: f(std::integral_constant<int, 5>{}); return true;
    case 6: f(std::integral_constant<int, 6>{}); return true;
    case 7: f(std::integral_constant<int, 7>{}); return true;
    case 8: f(std::integral_constant<int, 8>{}); return true;
    default: return false;
  }
}
}  // namespace

// d: J x B (row j holds d_ij for the B examples), a: B x K with K a multiple of 16
// (and so of L),
// out: J x K. Returns 0, or 1 when c is outside 1..8.
extern "C" int winsorized_outer_sum(const float* d, const float* a, float* out, int B, int J,
                                    int K, int c, int threads) {
  return with_clip(c, [&](auto C) { run<decltype(C)::value>(d, a, out, B, J, K, threads); })
             ? 0 : 1;
}

// d: B x J with J a multiple of 16; hi, lo: J values. Returns 0, or 1 when c is outside 1..8.
extern "C" int winsorize_bounds(const float* d, float* hi, float* lo, int B, int J, int c) {
  return with_clip(c, [&](auto C) { bounds<decltype(C)::value>(d, hi, lo, B, J); }) ? 0 : 1;
}

// The vector width this build uses, in floats (reported by the benchmark).
extern "C" int winsorize_lanes() { return L; }
