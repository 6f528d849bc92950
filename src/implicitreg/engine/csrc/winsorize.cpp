// Winsorized sums of per-example outer-product gradients d_i a_i^T (the weight gradients
// of a linear layer), without materializing the B x J x K tensor: one pass over the
// examples keeps, for 16 coordinates at a time, the c+1 largest and the c+1 smallest
// values in registers (a branch-free insertion network). The winsorized sum is then
//   sum - (c largest) - (c smallest) + c * ((c+1)-th largest + (c+1)-th smallest),
// which equals the sum of the clipped values, ties included, whenever B >= 2c + 2.
// Examples with d_ij = 0 (ReLU units that are off) give the value 0 for the whole row:
// they are entered into the buffers once, as zeros, instead of being looped over.
#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

namespace {
typedef float vec __attribute__((vector_size(64)));  // 16 floats
constexpr int L = 16;

inline vec vmax(vec a, vec b) { return a > b ? a : b; }
inline vec vmin(vec a, vec b) { return a < b ? a : b; }

template <int C>
void row(const float* dj, const float* a, float* out, int B, int K, int* live) {
  // dj: the B values of row j; a: B x K with K a multiple of L; out: K values.
  const float inf = std::numeric_limits<float>::infinity();
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
      const float di = dj[i];
      vec ai;
      std::memcpy(&ai, a + (long)i * K + k0, sizeof(vec));
      vec v = di * ai, w = v;
      sum += v;
#pragma GCC unroll 16
      for (int t = 0; t <= C; ++t) {
        const vec h = vmax(top[t], v); v = vmin(top[t], v); top[t] = h;
        const vec q = vmin(bot[t], w); w = vmax(bot[t], w); bot[t] = q;
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
}  // namespace

// d: J x B (row j holds d_ij for the B examples), a: B x K with K a multiple of 16,
// out: J x K. Returns 0, or 1 when c is outside 1..8.
extern "C" int winsorized_outer_sum(const float* d, const float* a, float* out, int B, int J,
                                    int K, int c, int threads) {
  switch (c) {
    case 1: run<1>(d, a, out, B, J, K, threads); return 0;
    case 2: run<2>(d, a, out, B, J, K, threads); return 0;
    case 3: run<3>(d, a, out, B, J, K, threads); return 0;
    case 4: run<4>(d, a, out, B, J, K, threads); return 0;
    case 5: run<5>(d, a, out, B, J, K, threads); return 0;
    case 6: run<6>(d, a, out, B, J, K, threads); return 0;
    case 7: run<7>(d, a, out, B, J, K, threads); return 0;
    case 8: run<8>(d, a, out, B, J, K, threads); return 0;
    default: return 1;
  }
}
