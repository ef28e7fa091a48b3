// facedistill native CPU kernels (N-API addon, built on the user's machine by core/backends/native/build.ts).
//
// Float32, NHWC, row-major, the same semantics as the pure-JS reference kernels of @tensorflow/tfjs-backend-cpu.
// Every entry point takes typed arrays (zero-copy views of the cpu backend's storage) and an Int32Array of sizes;
// the JS side (core/backends/native/kernels.ts) checks shapes and falls back to the reference kernel for anything
// not handled here. Threads: OpenMP over batch images / rows; the GEMM is a packed, register-blocked kernel written
// with GCC vector extensions so that it compiles to AVX-512, AVX2 or SSE from the same source (-march=native).
#include <node_api.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>
#if defined(__GLIBC__) || defined(__linux__)
#include <malloc.h>
#endif
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <memory>
#include <thread>

namespace {

#if defined(__AVX512F__)
constexpr int VL = 16;  // floats per vector register
constexpr int MR = 8;   // micro-tile rows (8 x 2 accumulators of 16 floats = 16 of the 32 zmm registers)
#else
constexpr int VL = 8;
constexpr int MR = 6;   // 6 x 2 ymm accumulators fit the 16 registers of AVX2
#endif
constexpr int NR = 2 * VL;  // micro-tile columns
constexpr int KC = 256;     // depth of one packed block (B block = KC x N floats, kept in L2)
// Below this many multiply-adds (or elements) a kernel stays on the calling thread: waking the pool costs more.
constexpr long kParallelWork = 1L << 18;

typedef float vf __attribute__((vector_size(VL * 4)));
typedef float vfu __attribute__((vector_size(VL * 4), aligned(4)));  // unaligned access

inline vf loadu(const float* p) { return *reinterpret_cast<const vfu*>(p); }
inline void storeu(float* p, vf v) { *reinterpret_cast<vfu*>(p) = v; }

// ---------------------------------------------------------------------------------------------------------------
// Threads. A kernel splits its work into many chunks; the calling thread starts on them at once and the helper
// threads join when the scheduler runs them. The caller only waits for chunks a helper actually took, never for a
// helper to wake up: on a shared, loaded machine a late helper finds nothing left and the kernel ran at one-thread
// speed instead of stalling at a barrier (OpenMP's end-of-region barrier made 2-thread kernels 4-10x slower than
// 1-thread ones under load here); on an idle machine all threads share the chunks.
class Pool {
 public:
  Pool() { resize(defaultThreads()); }
  int size() const { return int(workers_) + 1; }
  void resize(int n) {
    n = std::max(1, n);
    std::lock_guard<std::mutex> lock(mu_);
    // Helpers are never stopped (they sleep on the condition variable); growing adds more, shrinking caps use.
    while (int(spawned_) < n - 1) {
      const int tid = int(++spawned_);
      std::thread([this, tid] { work(tid); }).detach();
    }
    workers_ = n - 1;
  }
  // f(chunk, tid) for chunk in [0, n); tid in [0, size()) indexes per-thread scratch.
  template <class F>
  void run(long n, F&& f) {
    if (n <= 0) return;
    if (n == 1 || workers_ == 0) {
      for (long c = 0; c < n; c++) f(c, 0);
      return;
    }
    auto job = std::make_shared<Job>();
    job->fn = [&f](long c, int t) { f(c, t); };
    job->n = n;
    job->maxTid = int(workers_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = job;
      gen_++;
    }
    cv_.notify_all();
    drain(*job, 0);
    while (job->done.load(std::memory_order_acquire) < n) std::this_thread::yield();
  }

 private:
  struct Job {
    std::function<void(long, int)> fn;
    long n = 0;
    int maxTid = 0;
    std::atomic<long> next{0}, done{0};
  };
  static int defaultThreads() {
    for (const char* k : {"FACEDISTILL_THREADS", "OMP_NUM_THREADS"})
      if (const char* v = std::getenv(k)) {
        const int n = std::atoi(v);
        if (n > 0) return n;
      }
    return std::max(1u, std::thread::hardware_concurrency());
  }
  static void drain(Job& j, int tid) {
    for (;;) {
      const long c = j.next.fetch_add(1, std::memory_order_relaxed);
      if (c >= j.n) return;
      j.fn(c, tid);
      j.done.fetch_add(1, std::memory_order_release);
    }
  }
  void work(int tid) {
    uint64_t seen = 0;
    for (;;) {
      std::shared_ptr<Job> j;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return gen_ != seen; });
        seen = gen_;
        j = job_;
      }
      if (j && tid <= j->maxTid) drain(*j, tid);
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<Job> job_;
  uint64_t gen_ = 0;
  unsigned workers_ = 0, spawned_ = 0;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: its helpers are detached and sleep until the process ends
  return *p;
}
inline int num_threads() { return pool().size(); }

// f(i) for i in [0, n), in chunks of `grain`, on the pool when `parallel`.
template <class F>
void pfor(long n, long grain, bool parallel, F&& f) {
  if (!parallel || num_threads() == 1) {
    for (long i = 0; i < n; i++) f(i);
    return;
  }
  const long chunks = (n + grain - 1) / grain;
  pool().run(chunks, [&](long c, int) {
    const long e = std::min(n, (c + 1) * grain);
    for (long i = c * grain; i < e; i++) f(i);
  });
}

// f(i, tid) for i in [0, n), one index per chunk.
template <class F>
void peach(long n, bool parallel, F&& f) {
  if (!parallel || num_threads() == 1) {
    for (long i = 0; i < n; i++) f(i, 0);
    return;
  }
  pool().run(n, f);
}

// Deterministic reductions. Items [0, n) run in G contiguous groups, each group in order on one thread: f(item, g).
// A caller that accumulates per group and adds the groups up in group order gets bits that do not depend on which
// thread ran what, so reruns and resumed runs repeat exactly. G: at most 64, and at most 16M floats of partials.
constexpr long kMaxGroups = 64, kGroupBudget = 1L << 24;
inline long group_count(long n, long partialSize) {
  return std::max(1L, std::min({n, kMaxGroups, kGroupBudget / std::max(1L, partialSize)}));
}
template <class F>
void pgroups(long n, long G, bool parallel, F&& f) {
  peach(G, parallel, [&](long g, int) {
    const long i0 = n * g / G, i1 = n * (g + 1) / G;
    for (long i = i0; i < i1; i++) f(i, int(g));
  });
}

// out[i] = the groups' partial sums added in group order (groups that got no item are empty).
void add_partials(const std::vector<std::vector<float>>& part, long n, float* out) {
  for (long i = 0; i < n; i++) {
    float s = 0.f;
    for (const auto& p : part)
      if (!p.empty()) s += p[i];
    out[i] = s;
  }
}

// A per-thread scratch buffer of at least n floats (contents undefined).
inline float* scratch(size_t n) {
  thread_local std::vector<float> buf;
  if (buf.size() < n) buf.resize(n);
  return buf.data();
}

// ---------------------------------------------------------------------------------------------------------------
// Epilogue of the fused convolutions (tfjs's FusedConv2D / FusedDepthwiseConv2D): y = act(y + bias), applied to rows
// of C = out-channels floats right after a kernel wrote them (still in cache), never as a separate pass over the
// output. Activations as tfjs's cpu applyActivation defines them (the same comparisons; exp in float, not double).
enum Act { A_LINEAR = 0, A_RELU = 1, A_RELU6 = 2, A_PRELU = 3, A_LEAKY = 4, A_ELU = 5, A_SIGMOID = 6 };

struct Epilogue {
  long C = 0;
  int act = A_LINEAR;
  float leaky = 0.f;
  // Bias and PReLU weights repeat along the output's leading axes: `rows` rows of C (a scalar is expanded to one row).
  const float* bias = nullptr;
  long biasRows = 0;
  const float* alpha = nullptr;
  long alphaRows = 0;
  std::vector<float> own;  // scalars expanded to a row (reserved for both: the pointers into it stay valid)

  Epilogue(long channels, int activation, float leakyAlpha) : C(channels), act(activation), leaky(leakyAlpha) {
    own.reserve(size_t(2 * std::max(1L, C)));
  }
  bool active() const { return bias != nullptr || act != A_LINEAR; }
  // Sets the bias or the PReLU weights (n floats); false when they are neither a scalar nor whole rows of C.
  bool set(const float* p, long n, bool isBias) {
    if (!p) return true;
    const float*& dst = isBias ? bias : alpha;
    long& rows = isBias ? biasRows : alphaRows;
    if (n == 1 && C > 1) {
      const size_t at = own.size();
      own.insert(own.end(), size_t(C), p[0]);
      dst = own.data() + at;
      rows = 1;
      return true;
    }
    if (C <= 0 || n <= 0 || n % C != 0) return false;
    dst = p;
    rows = n / C;
    return true;
  }

  template <int ACT, bool BIAS>
  static void row(float* __restrict y, const float* __restrict b, const float* __restrict a, long C, float leaky) {
    for (long c = 0; c < C; c++) {
      float v = y[c];
      if constexpr (BIAS) v += b[c];
      if constexpr (ACT == A_RELU) v = v < 0.f ? 0.f : v;
      else if constexpr (ACT == A_RELU6) v = v < 0.f ? 0.f : (v > 6.f ? 6.f : v);
      else if constexpr (ACT == A_PRELU) { const float n = a[c] * v; v = v < 0.f ? n : v; }
      else if constexpr (ACT == A_LEAKY) { const float n = leaky * v; v = v < 0.f ? n : v; }
      else if constexpr (ACT == A_ELU) v = v >= 0.f ? v : std::exp(v) - 1.f;
      else if constexpr (ACT == A_SIGMOID) v = 1.f / (1.f + std::exp(-v));
      y[c] = v;
    }
  }
  template <int ACT, bool BIAS>
  void rowsT(float* y, long r0, long n) const {
    if ((!BIAS || biasRows == 1) && (!alpha || alphaRows == 1)) {
      for (long r = 0; r < n; r++, y += C) row<ACT, BIAS>(y, bias, alpha, C, leaky);
      return;
    }
    for (long r = r0; r < r0 + n; r++, y += C)
      row<ACT, BIAS>(y, BIAS ? bias + (r % biasRows) * C : nullptr, alpha ? alpha + (r % alphaRows) * C : nullptr, C, leaky);
  }
  template <bool BIAS>
  void rowsB(float* y, long r0, long n) const {
    switch (act) {
      case A_RELU: return rowsT<A_RELU, BIAS>(y, r0, n);
      case A_RELU6: return rowsT<A_RELU6, BIAS>(y, r0, n);
      case A_PRELU: return rowsT<A_PRELU, BIAS>(y, r0, n);
      case A_LEAKY: return rowsT<A_LEAKY, BIAS>(y, r0, n);
      case A_ELU: return rowsT<A_ELU, BIAS>(y, r0, n);
      case A_SIGMOID: return rowsT<A_SIGMOID, BIAS>(y, r0, n);
      default: return rowsT<A_LINEAR, BIAS>(y, r0, n);
    }
  }
  // Rows [r0, r0 + n) of the output (row r = output pixel r, all images counted), stored contiguously from y.
  void rows(float* y, long r0, long n) const {
    if (!active() || n <= 0) return;
    if (bias) rowsB<true>(y, r0, n);
    else rowsB<false>(y, r0, n);
  }
};

// ---------------------------------------------------------------------------------------------------------------
// GEMM: C[M x N] (=|+=) sum_k A(i, k) * B(k, j), with A(i, k) = A[i*rsa + k*csa], B(k, j) = B[k*rsb + j*csb].

// Ap: MR x kc micro-panel, k-major (Ap[k*MR + i]); Bp: kc x NR panel (Bp[k*NR + j]).
inline void micro_kernel(int kc, const float* __restrict Ap, const float* __restrict Bp, float* C, long ldc, int mr,
                         int nr, bool accumulate) {
  vf c0[MR], c1[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; i++) { c0[i] = vf{} ; c1[i] = vf{}; }
  for (int k = 0; k < kc; k++) {
    const vf b0 = loadu(Bp), b1 = loadu(Bp + VL);
    Bp += NR;
#pragma GCC unroll 8
    for (int i = 0; i < MR; i++) {
      const float a = Ap[i];
      c0[i] += a * b0;
      c1[i] += a * b1;
    }
    Ap += MR;
  }
  if (mr == MR && nr == NR) {
    for (int i = 0; i < MR; i++) {
      float* c = C + i * ldc;
      if (accumulate) {
        storeu(c, loadu(c) + c0[i]);
        storeu(c + VL, loadu(c + VL) + c1[i]);
      } else {
        storeu(c, c0[i]);
        storeu(c + VL, c1[i]);
      }
    }
  } else {
    for (int i = 0; i < mr; i++) {
      float tmp[NR];
      storeu(tmp, c0[i]);
      storeu(tmp + VL, c1[i]);
      float* c = C + i * ldc;
      for (int j = 0; j < nr; j++) c[j] = accumulate ? c[j] + tmp[j] : tmp[j];
    }
  }
}

// Single-threaded GEMM over rows [0, M). Scratch buffers are reused across calls by the calling thread.
// With an epilogue (ldc == N == epi->C, not accumulating), each MR-row tile gets it as soon as its last depth block is
// written; epiRow0 is the output row index of C's row 0.
void gemm_st(long M, long N, long K, const float* A, long rsa, long csa, const float* B, long rsb, long csb, float* C,
             long ldc, bool accumulate, const Epilogue* epi = nullptr, long epiRow0 = 0) {
  if (M <= 0 || N <= 0) return;
  if (epi && !epi->active()) epi = nullptr;
  if (K <= 0) {
    if (!accumulate)
      for (long i = 0; i < M; i++) std::memset(C + i * ldc, 0, sizeof(float) * N);
    if (epi) epi->rows(C, epiRow0, M);
    return;
  }
  thread_local std::vector<float> bpack, apack;
  const long panels = (N + NR - 1) / NR;
  bpack.resize(size_t(KC) * panels * NR);
  apack.resize(size_t(KC) * MR);
  for (long k0 = 0; k0 < K; k0 += KC) {
    const int kc = int(std::min<long>(KC, K - k0));
    const bool acc = accumulate || k0 > 0;
    for (long p = 0; p < panels; p++) {
      float* bp = bpack.data() + p * KC * NR;
      const long j0 = p * NR;
      const int nr = int(std::min<long>(NR, N - j0));
      for (int k = 0; k < kc; k++) {
        const float* src = B + (k0 + k) * rsb + j0 * csb;
        float* dst = bp + k * NR;
        if (csb == 1) {
          std::memcpy(dst, src, sizeof(float) * nr);
        } else {
          for (int j = 0; j < nr; j++) dst[j] = src[j * csb];
        }
        for (int j = nr; j < NR; j++) dst[j] = 0.f;
      }
    }
    for (long i0 = 0; i0 < M; i0 += MR) {
      const int mr = int(std::min<long>(MR, M - i0));
      float* ap = apack.data();
      if (csa == 1) {
        for (int i = 0; i < mr; i++) {
          const float* src = A + (i0 + i) * rsa + k0;
          for (int k = 0; k < kc; k++) ap[k * MR + i] = src[k];
        }
      } else {
        for (int k = 0; k < kc; k++) {
          const float* src = A + i0 * rsa + (k0 + k) * csa;
          for (int i = 0; i < mr; i++) ap[k * MR + i] = src[i * rsa];
        }
      }
      if (mr < MR)
        for (int k = 0; k < kc; k++)
          for (int i = mr; i < MR; i++) ap[k * MR + i] = 0.f;
      for (long p = 0; p < panels; p++) {
        const long j0 = p * NR;
        micro_kernel(kc, ap, bpack.data() + p * KC * NR, C + i0 * ldc + j0, ldc, mr, int(std::min<long>(NR, N - j0)),
                     acc);
      }
      if (epi && k0 + kc >= K) epi->rows(C + i0 * ldc, epiRow0 + i0, mr);
    }
  }
}

// Multi-threaded GEMM: rows split over threads when M is large; otherwise the depth K is split and the partial
// products are summed (the weight-gradient case: M, N = channels, K = batch x pixels).
void gemm(long M, long N, long K, const float* A, long rsa, long csa, const float* B, long rsb, long csb, float* C,
          long ldc, bool accumulate, const Epilogue* epi = nullptr) {
  const int nt = num_threads();
  if (nt == 1 || M * N * K < kParallelWork) {
    gemm_st(M, N, K, A, rsa, csa, B, rsb, csb, C, ldc, accumulate, epi, 0);
    return;
  }
  // Many small chunks, not one half per thread (see Pool). The depth when it dominates (the weight gradients: M, N =
  // channels, K = batch x pixels: splitting rows would repack all of B per chunk), else rows, in chunks small enough
  // for ~4 per thread.
  if (K < 4 * M || K < 512) {
    const long rowsPer = std::min<long>(long(MR) * 32, std::max<long>(MR, ((M + 4L * nt - 1) / (4L * nt) + MR - 1) / MR * MR));
    const long chunks = (M + rowsPer - 1) / rowsPer;
    pool().run(chunks, [&](long ch, int) {
      const long r0 = ch * rowsPer, r1 = std::min(M, r0 + rowsPer);
      gemm_st(r1 - r0, N, K, A + r0 * rsa, rsa, csa, B, rsb, csb, C + r0 * ldc, ldc, accumulate, epi, r0);
    });
    return;
  }
  // Depth chunks independent of the thread count, partial sums per group (see pgroups): the same bits every run.
  const long kPer = std::min<long>(2048, std::max<long>(256, (K + 15) / 16)), kChunks = (K + kPer - 1) / kPer;
  const long G = group_count(kChunks, M * N);
  std::vector<std::vector<float>> part(G);
  pgroups(kChunks, G, true, [&](long ch, int t) {
    if (part[t].empty()) part[t].assign(size_t(M) * N, 0.f);
    const long k0 = ch * kPer, k1 = std::min(K, k0 + kPer);
    gemm_st(M, N, k1 - k0, A + k0 * csa, rsa, csa, B + k0 * rsb, rsb, csb, part[t].data(), N, true);
  });
  for (long i = 0; i < M; i++) {
    float* c = C + i * ldc;
    for (long j = 0; j < N; j++) {
      float s = accumulate ? c[j] : 0.f;
      for (long t = 0; t < G; t++)
        if (!part[t].empty()) s += part[t][i * N + j];
      c[j] = s;
    }
    if (epi) epi->rows(c, i, 1);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Convolution geometry, as computed by tfjs's computeConv2DInfo (NHWC, dilation 1).
struct Conv {
  long n, h, w, ci, oh, ow, co, kh, kw, sh, sw, pt, pl;
  explicit Conv(const int32_t* p)
      : n(p[0]), h(p[1]), w(p[2]), ci(p[3]), oh(p[4]), ow(p[5]), co(p[6]), kh(p[7]), kw(p[8]), sh(p[9]), sw(p[10]),
        pt(p[11]), pl(p[12]) {}
  bool pointwise() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0 && pl == 0 && oh == h && ow == w; }
  long cols() const { return kh * kw * ci; }
};

// im2col of one image: col[(oy*ow + ox), (ky*kw + kx)*ci + c], zero outside the input.
void im2col(const Conv& g, const float* x, float* col) {
  const long K = g.cols();
  for (long oy = 0; oy < g.oh; oy++)
    for (long ox = 0; ox < g.ow; ox++) {
      float* dst = col + (oy * g.ow + ox) * K;
      for (long ky = 0; ky < g.kh; ky++) {
        const long iy = oy * g.sh - g.pt + ky;
        for (long kx = 0; kx < g.kw; kx++) {
          const long ix = ox * g.sw - g.pl + kx;
          float* d = dst + (ky * g.kw + kx) * g.ci;
          if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) std::memset(d, 0, sizeof(float) * g.ci);
          else std::memcpy(d, x + (iy * g.w + ix) * g.ci, sizeof(float) * g.ci);
        }
      }
    }
}

// Adds col back into an image (the adjoint of im2col).
void col2im_add(const Conv& g, const float* col, float* dx) {
  const long K = g.cols();
  for (long oy = 0; oy < g.oh; oy++)
    for (long ox = 0; ox < g.ow; ox++) {
      const float* src = col + (oy * g.ow + ox) * K;
      for (long ky = 0; ky < g.kh; ky++) {
        const long iy = oy * g.sh - g.pt + ky;
        if (iy < 0 || iy >= g.h) continue;
        for (long kx = 0; kx < g.kw; kx++) {
          const long ix = ox * g.sw - g.pl + kx;
          if (ix < 0 || ix >= g.w) continue;
          const float* s = src + (ky * g.kw + kx) * g.ci;
          float* d = dx + (iy * g.w + ix) * g.ci;
          for (long c = 0; c < g.ci; c++) d[c] += s[c];
        }
      }
    }
}

void conv2d_epi(const Conv& g, const float* x, const float* w, float* y, const Epilogue* epi) {
  const long M = g.n * g.oh * g.ow;
  if (g.pointwise()) {
    gemm(M, g.co, g.ci, x, g.ci, 1, w, g.co, 1, y, g.co, false, epi);
    return;
  }
  const long P = g.oh * g.ow, K = g.cols();
  peach(g.n, M * K * g.co > kParallelWork, [&](long b, int) {
    float* col = scratch(size_t(P) * K);
    im2col(g, x + b * g.h * g.w * g.ci, col);
    gemm_st(P, g.co, K, col, K, 1, w, g.co, 1, y + b * P * g.co, g.co, false, epi, b * P);
  });
}

void conv2d(const Conv& g, const float* x, const float* w, float* y) { conv2d_epi(g, x, w, y, nullptr); }

void conv2d_backprop_input(const Conv& g, const float* dy, const float* w, float* dx) {
  const long M = g.n * g.oh * g.ow;
  // dx = dy x W^T, W viewed as [K, co]
  if (g.pointwise()) {
    gemm(M, g.ci, g.co, dy, g.co, 1, w, 1, g.co, dx, g.ci, false);
    return;
  }
  const long P = g.oh * g.ow, K = g.cols(), img = g.h * g.w * g.ci;
  peach(g.n, M * K * g.co > kParallelWork, [&](long b, int) {
    float* col = scratch(size_t(P) * K);
    gemm_st(P, K, g.co, dy + b * P * g.co, g.co, 1, w, 1, g.co, col, K, false);
    float* d = dx + b * img;
    std::memset(d, 0, sizeof(float) * img);
    col2im_add(g, col, d);
  });
}

void conv2d_backprop_filter(const Conv& g, const float* x, const float* dy, float* dw) {
  const long M = g.n * g.oh * g.ow, K = g.cols();
  // dW[K, co] = col^T x dy
  if (g.pointwise()) {
    gemm(g.ci, g.co, M, x, 1, g.ci, dy, g.co, 1, dw, g.co, false);
    return;
  }
  const long P = g.oh * g.ow;
  const int nt = int(group_count(g.n, K * g.co));
  std::vector<std::vector<float>> part(nt);
  pgroups(g.n, nt, M * K * g.co > kParallelWork, [&](long b, int t) {
    if (part[t].empty()) part[t].assign(size_t(K) * g.co, 0.f);
    float* col = scratch(size_t(P) * K);
    im2col(g, x + b * g.h * g.w * g.ci, col);
    gemm_st(K, g.co, P, col, 1, K, dy + b * P * g.co, g.co, 1, part[t].data(), g.co, true);
  });
  add_partials(part, K * g.co, dw);
}

// ---------------------------------------------------------------------------------------------------------------
// Depthwise convolution, channel multiplier 1 (co == ci): channels are the contiguous, vectorised axis.

void dw_forward_generic(const Conv& g, const float* x, const float* w, float* y, const Epilogue* epi) {
  const long C = g.ci;
  peach(g.n * g.oh, g.n * g.oh * g.ow * C * g.kh * g.kw > kParallelWork, [&](long row, int) {
      const long b = row / g.oh, oy = row % g.oh;
      const float* xb = x + b * g.h * g.w * C;
      float* yr = y + ((b * g.oh + oy) * g.ow) * C;
      for (long ox = 0; ox < g.ow; ox++) {
        float* o = yr + ox * C;
        std::memset(o, 0, sizeof(float) * C);
        for (long ky = 0; ky < g.kh; ky++) {
          const long iy = oy * g.sh - g.pt + ky;
          if (iy < 0 || iy >= g.h) continue;
          for (long kx = 0; kx < g.kw; kx++) {
            const long ix = ox * g.sw - g.pl + kx;
            if (ix < 0 || ix >= g.w) continue;
            const float* xi = xb + (iy * g.w + ix) * C;
            const float* wk = w + (ky * g.kw + kx) * C;
            for (long c = 0; c < C; c++) o[c] += xi[c] * wk[c];
          }
        }
      }
      if (epi) epi->rows(yr, (b * g.oh + oy) * g.ow, g.ow);
  });
}

void dw_backprop_input_generic(const Conv& g, const float* dy, const float* w, float* dx) {
  const long C = g.ci, img = g.h * g.w * C;
  pfor(g.n, 1, g.n > 1 && g.n * g.oh * g.ow * C * g.kh * g.kw > kParallelWork, [&](long b) {
    float* d = dx + b * img;
    std::memset(d, 0, sizeof(float) * img);
    for (long oy = 0; oy < g.oh; oy++)
      for (long ox = 0; ox < g.ow; ox++) {
        const float* gy = dy + ((b * g.oh + oy) * g.ow + ox) * C;
        for (long ky = 0; ky < g.kh; ky++) {
          const long iy = oy * g.sh - g.pt + ky;
          if (iy < 0 || iy >= g.h) continue;
          for (long kx = 0; kx < g.kw; kx++) {
            const long ix = ox * g.sw - g.pl + kx;
            if (ix < 0 || ix >= g.w) continue;
            float* di = d + (iy * g.w + ix) * C;
            const float* wk = w + (ky * g.kw + kx) * C;
            for (long c = 0; c < C; c++) di[c] += gy[c] * wk[c];
          }
        }
      }
  });
}

void dw_backprop_filter_generic(const Conv& g, const float* x, const float* dy, float* dw) {
  const long C = g.ci, KS = g.kh * g.kw * C;
  const int nt = int(group_count(g.n * g.oh, KS));
  std::vector<std::vector<float>> part(nt);
  pgroups(g.n * g.oh, nt, g.n * g.oh * g.ow * C * g.kh * g.kw > kParallelWork, [&](long row, int t) {
        if (part[t].empty()) part[t].assign(size_t(KS), 0.f);
        float* acc = part[t].data();
        const long b = row / g.oh, oy = row % g.oh;
        const float* xb = x + b * g.h * g.w * C;
        for (long ox = 0; ox < g.ow; ox++) {
          const float* gy = dy + ((b * g.oh + oy) * g.ow + ox) * C;
          for (long ky = 0; ky < g.kh; ky++) {
            const long iy = oy * g.sh - g.pt + ky;
            if (iy < 0 || iy >= g.h) continue;
            for (long kx = 0; kx < g.kw; kx++) {
              const long ix = ox * g.sw - g.pl + kx;
              if (ix < 0 || ix >= g.w) continue;
              const float* xi = xb + (iy * g.w + ix) * C;
              float* a = acc + (ky * g.kw + kx) * C;
              for (long c = 0; c < C; c++) a[c] += gy[c] * xi[c];
            }
          }
        }
  });
  add_partials(part, KS, dw);
}

// The same kernels for 3x3 filters with channels a multiple of the vector width (every depthwise layer of a
// MobileFaceNet but the final 7x7): one vector of channels at a time, the 9 weights (or the 9 gradient sums) held in
// registers, each output written once; taps unrolled at compile time away from the borders. The generic loops above
// read and write every output once per tap.

// Valid taps of one output position along one axis: k in [k0, k1) reads input index o*s - p + k in [0, n).
inline void tap_range(long o, long s, long p, long k, long n, long* k0, long* k1) {
  const long i0 = o * s - p;
  *k0 = std::max(0L, -i0);
  *k1 = std::min(k, n - i0);
}

constexpr int K3 = 3;
bool dw3(const Conv& g) { return g.kh == K3 && g.kw == K3 && g.ci % VL == 0; }

// The activations that need no exp, on a vector: applied to a 3x3 depthwise output before it is stored.
template <int ACT>
inline vf vact(vf v, vf a, float leaky) {
  const vf z = vf{};
  if constexpr (ACT == A_RELU) return v < z ? z : v;
  else if constexpr (ACT == A_RELU6) { const vf six = z + 6.f; return v < z ? z : (v > six ? six : v); }
  else if constexpr (ACT == A_PRELU) return v < z ? a * v : v;
  else if constexpr (ACT == A_LEAKY) return v < z ? leaky * v : v;
  else return v;
}

// One output row of the 3x3 depthwise conv (all channels), with bias and activation ACT applied in registers when
// BIAS / ACT say so (per-channel bias and PReLU weights: `bias` / `alpha` point at C floats, else unused). Four
// neighbouring outputs at a time in the interior: four independent accumulation chains instead of one (each output
// still adds its 9 taps in the same order, so the bits are those of one output at a time).
template <int ACT, bool BIAS>
void dw3_row(const Conv& g, const float* x, const float* w, float* y, bool flip, long row, const float* bias,
             const float* alpha, float leaky) {
  const long C = g.ci;
  const long b = row / g.oh, oy = row % g.oh;
  long ky0, ky1;
  tap_range(oy, g.sh, g.pt, K3, g.h, &ky0, &ky1);
  const float* xb = x + b * g.h * g.w * C;
  float* yr = y + ((b * g.oh + oy) * g.ow) * C;
  // Interior columns [oxA, oxB): all three taps inside the input.
  long oxA = g.ow, oxB = g.ow;
  if (ky0 == 0 && ky1 == K3) {
    oxA = std::min(g.ow, (g.pl + g.sw - 1) / g.sw);
    oxB = g.w + g.pl - K3 < 0 ? 0 : std::min(g.ow, (g.w + g.pl - K3) / g.sw + 1);
    if (oxB < oxA) oxB = oxA;
  }
  const long rowStride = g.w * C;
  // Channels innermost: the loads and stores of one output group walk memory contiguously; the filter taps of each
  // channel vector come from L1.
  auto tap = [&](long c, int t) { return loadu(w + (flip ? 8 - t : t) * C + c); };
  auto finish = [&](vf acc, long c) {
    if constexpr (BIAS) acc += loadu(bias + c);
    return vact<ACT>(acc, ACT == A_PRELU ? loadu(alpha + c) : vf{}, leaky);
  };
  auto single = [&](long ox, bool interior) {
    long kx0 = 0, kx1 = K3, ya = ky0, yb = ky1;
    if (!interior) tap_range(ox, g.sw, g.pl, K3, g.w, &kx0, &kx1);
    else { ya = 0; yb = K3; }
    const float* xi = xb + ((oy * g.sh - g.pt) * g.w + ox * g.sw - g.pl) * C;
    for (long c = 0; c < C; c += VL) {
      vf acc = vf{};
      for (long ky = ya; ky < yb; ky++)
        for (long kx = kx0; kx < kx1; kx++) acc += loadu(xi + ky * rowStride + kx * C + c) * tap(c, int(ky * K3 + kx));
      storeu(yr + ox * C + c, finish(acc, c));
    }
  };
  long ox = 0;
  for (; ox < oxA; ox++) single(ox, false);
  if (g.sw == 1) {
    // Stride 1: 4 outputs read 6 neighbouring input columns per filter row (18 loads for 36 multiply-adds), four
    // independent accumulation chains (each output still adds its 9 taps in order: the bits of one at a time).
    for (; ox + 4 <= oxB; ox += 4) {
      const float* xi = xb + ((oy * g.sh - g.pt) * g.w + ox - g.pl) * C;
      float* o = yr + ox * C;
      for (long c = 0; c < C; c += VL) {
        vf a0 = vf{}, a1 = vf{}, a2 = vf{}, a3 = vf{};
#pragma GCC unroll 3
        for (int ky = 0; ky < K3; ky++) {
          const float* q = xi + ky * rowStride + c;
          const vf v0 = loadu(q), v1 = loadu(q + C), v2 = loadu(q + 2 * C), v3 = loadu(q + 3 * C), v4 = loadu(q + 4 * C),
                   v5 = loadu(q + 5 * C);
          const vf w0 = tap(c, ky * K3), w1 = tap(c, ky * K3 + 1), w2 = tap(c, ky * K3 + 2);
          a0 += v0 * w0; a1 += v1 * w0; a2 += v2 * w0; a3 += v3 * w0;
          a0 += v1 * w1; a1 += v2 * w1; a2 += v3 * w1; a3 += v4 * w1;
          a0 += v2 * w2; a1 += v3 * w2; a2 += v4 * w2; a3 += v5 * w2;
        }
        storeu(o + c, finish(a0, c));
        storeu(o + C + c, finish(a1, c));
        storeu(o + 2 * C + c, finish(a2, c));
        storeu(o + 3 * C + c, finish(a3, c));
      }
    }
  } else if (g.sw == 2) {
    // Stride 2: 9 input columns per filter row for 4 outputs.
    for (; ox + 4 <= oxB; ox += 4) {
      const float* xi = xb + ((oy * g.sh - g.pt) * g.w + 2 * ox - g.pl) * C;
      float* o = yr + ox * C;
      for (long c = 0; c < C; c += VL) {
        vf a0 = vf{}, a1 = vf{}, a2 = vf{}, a3 = vf{};
#pragma GCC unroll 3
        for (int ky = 0; ky < K3; ky++) {
          const float* q = xi + ky * rowStride + c;
          const vf w0 = tap(c, ky * K3), w1 = tap(c, ky * K3 + 1), w2 = tap(c, ky * K3 + 2);
          const vf v0 = loadu(q), v1 = loadu(q + C), v2 = loadu(q + 2 * C), v3 = loadu(q + 3 * C), v4 = loadu(q + 4 * C);
          a0 += v0 * w0; a0 += v1 * w1; a0 += v2 * w2;
          a1 += v2 * w0; a1 += v3 * w1; a1 += v4 * w2;
          const vf v5 = loadu(q + 5 * C), v6 = loadu(q + 6 * C), v7 = loadu(q + 7 * C), v8 = loadu(q + 8 * C);
          a2 += v4 * w0; a2 += v5 * w1; a2 += v6 * w2;
          a3 += v6 * w0; a3 += v7 * w1; a3 += v8 * w2;
        }
        storeu(o + c, finish(a0, c));
        storeu(o + C + c, finish(a1, c));
        storeu(o + 2 * C + c, finish(a2, c));
        storeu(o + 3 * C + c, finish(a3, c));
      }
    }
  }
  for (; ox < oxB; ox++) single(ox, true);
  for (; ox < g.ow; ox++) single(ox, false);
}

// Forward; with `flip` the filter is rotated 180 degrees (the input gradient of a stride-1 depthwise conv is the
// forward conv of dy with the rotated filter and padding k-1-p). The epilogue runs in registers where the bias and
// PReLU weights are per channel and the activation needs no exp; otherwise on each finished row.
void dw3_forward(const Conv& g, const float* x, const float* w, float* y, bool flip, const Epilogue* epi = nullptr) {
  const bool inReg = epi && epi->biasRows <= 1 && (epi->act != A_PRELU || epi->alphaRows == 1) &&
                     (epi->act == A_LINEAR || epi->act == A_RELU || epi->act == A_RELU6 || epi->act == A_PRELU ||
                      epi->act == A_LEAKY);
  const bool bias = inReg && epi->bias;
  const int act = inReg ? epi->act : A_LINEAR;
  const float* bp = bias ? epi->bias : nullptr;
  const float* ap = inReg ? epi->alpha : nullptr;
  const float leaky = inReg ? epi->leaky : 0.f;
  auto rowFn = [&]() -> void (*)(const Conv&, const float*, const float*, float*, bool, long, const float*, const float*, float) {
    switch (act) {
      case A_RELU: return bias ? dw3_row<A_RELU, true> : dw3_row<A_RELU, false>;
      case A_RELU6: return bias ? dw3_row<A_RELU6, true> : dw3_row<A_RELU6, false>;
      case A_PRELU: return bias ? dw3_row<A_PRELU, true> : dw3_row<A_PRELU, false>;
      case A_LEAKY: return bias ? dw3_row<A_LEAKY, true> : dw3_row<A_LEAKY, false>;
      default: return bias ? dw3_row<A_LINEAR, true> : dw3_row<A_LINEAR, false>;
    }
  }();
  const Epilogue* after = epi && !inReg ? epi : nullptr;
  peach(g.n * g.oh, g.n * g.oh * g.ow * g.ci * 9 > kParallelWork, [&](long row, int) {
    rowFn(g, x, w, y, flip, row, bp, ap, leaky);
    if (after) after->rows(y + row * g.ow * g.ci, row * g.ow, g.ow);
  });
}

void dw3_backprop_filter(const Conv& g, const float* x, const float* dy, float* dw) {
  const long C = g.ci, KS = 9 * C;
  const int nt = int(group_count(g.n * g.oh, KS));
  std::vector<std::vector<float>> part(nt);
  pgroups(g.n * g.oh, nt, g.n * g.oh * g.ow * C * 9 > kParallelWork, [&](long row, int t) {
    if (part[t].empty()) part[t].assign(size_t(KS), 0.f);
    float* accMem = part[t].data();
    const long b = row / g.oh, oy = row % g.oh;
    long ky0, ky1;
    tap_range(oy, g.sh, g.pt, K3, g.h, &ky0, &ky1);
    const float* xb = x + b * g.h * g.w * C;
    const float* gr = dy + ((b * g.oh + oy) * g.ow) * C;
    for (long c = 0; c < C; c += VL) {
      vf acc[9];
#pragma GCC unroll 9
      for (int q = 0; q < 9; q++) acc[q] = vf{};
      for (long ox = 0; ox < g.ow; ox++) {
        long kx0, kx1;
        tap_range(ox, g.sw, g.pl, K3, g.w, &kx0, &kx1);
        const vf gv = loadu(gr + ox * C + c);
        const float* xi = xb + ((oy * g.sh - g.pt) * g.w + ox * g.sw - g.pl) * C + c;
        if (ky0 == 0 && ky1 == K3 && kx0 == 0 && kx1 == K3) {
#pragma GCC unroll 3
          for (int ky = 0; ky < K3; ky++)
#pragma GCC unroll 3
            for (int kx = 0; kx < K3; kx++) acc[ky * K3 + kx] += gv * loadu(xi + (ky * g.w + kx) * C);
        } else {
          for (long ky = ky0; ky < ky1; ky++)
            for (long kx = kx0; kx < kx1; kx++) acc[ky * K3 + kx] += gv * loadu(xi + (ky * g.w + kx) * C);
        }
      }
#pragma GCC unroll 9
      for (int q = 0; q < 9; q++) storeu(accMem + q * C + c, loadu(accMem + q * C + c) + acc[q]);
    }
  });
  add_partials(part, KS, dw);
}

void dw_forward_epi(const Conv& g, const float* x, const float* w, float* y, const Epilogue* epi) {
  if (epi && !epi->active()) epi = nullptr;
  if (dw3(g)) return dw3_forward(g, x, w, y, false, epi);
  dw_forward_generic(g, x, w, y, epi);
}

void dw_forward(const Conv& g, const float* x, const float* w, float* y) { dw_forward_epi(g, x, w, y, nullptr); }

void dw_backprop_input(const Conv& g, const float* dy, const float* w, float* dx) {
  if (dw3(g) && g.sh == 1 && g.sw == 1 && g.pt <= 2 && g.pl <= 2 && g.oh == g.h + 2 * g.pt - 2 && g.ow == g.w + 2 * g.pl - 2) {
    // Stride 1 with symmetric padding: dx = dy conv rot180(w), padding 2 - p, output h x w.
    Conv t = g;
    t.h = g.oh; t.w = g.ow; t.oh = g.h; t.ow = g.w; t.pt = K3 - 1 - g.pt; t.pl = K3 - 1 - g.pl;
    return dw3_forward(t, dy, w, dx, true);
  }
  dw_backprop_input_generic(g, dy, w, dx);
}

void dw_backprop_filter(const Conv& g, const float* x, const float* dy, float* dw) {
  if (dw3(g)) return dw3_backprop_filter(g, x, dy, dw);
  dw_backprop_filter_generic(g, x, dy, dw);
}

// ---------------------------------------------------------------------------------------------------------------
// Elementwise and reductions. A binary operand either has the output's size or is broadcast along leading axes
// (its size divides the output's and it matches the output's trailing dimensions): index i % size.

enum BinOp { ADD = 0, SUB = 1, MUL = 2, DIV = 3, SQDIFF = 4, MAXIMUM = 5, MINIMUM = 6 };

template <int OP>
inline float bin(float a, float b) {
  if constexpr (OP == ADD) return a + b;
  else if constexpr (OP == SUB) return a - b;
  else if constexpr (OP == MUL) return a * b;
  else if constexpr (OP == DIV) return a / b;
  else if constexpr (OP == SQDIFF) return (a - b) * (a - b);
  else if constexpr (OP == MAXIMUM) return a > b ? a : b;  // tfjs: NaN handling is not relied upon here
  else return a < b ? a : b;
}

template <int OP>
void binary(const float* a, long na, const float* b, long nb, float* out, long n) {
  if (na == n && nb == n) {
    pfor(n, 16384, n > kParallelWork, [&](long i) { out[i] = bin<OP>(a[i], b[i]); });
  } else if (nb == 1) {
    const float s = b[0];
    pfor(n, 16384, n > kParallelWork, [&](long i) { out[i] = bin<OP>(a[i], s); });
  } else if (na == 1) {
    const float s = a[0];
    pfor(n, 16384, n > kParallelWork, [&](long i) { out[i] = bin<OP>(s, b[i]); });
  } else if (na == n) {  // b repeats every nb elements
    const long rows = n / nb;
    pfor(rows, 256, n > kParallelWork, [&](long r) {
      const float* ar = a + r * nb;
      float* o = out + r * nb;
      for (long j = 0; j < nb; j++) o[j] = bin<OP>(ar[j], b[j]);
    });
  } else {  // a repeats every na elements, b full size
    const long rows = n / na;
    pfor(rows, 256, n > kParallelWork, [&](long r) {
      const float* br = b + r * na;
      float* o = out + r * na;
      for (long j = 0; j < na; j++) o[j] = bin<OP>(a[j], br[j]);
    });
  }
}

// General broadcasting: out has `R` axes (adjacent axes merged, size-1 axes dropped by the caller), sa / sb are a's
// and b's element strides along them (0 where the operand is broadcast). The last axis is the contiguous run, where
// each operand's stride is 1 or 0. Rows (all axes but the last) split over threads in chunks of ~16K elements.
constexpr int kMaxRank = 8;

template <int OP>
void binary_bcast(const float* a, const float* b, float* out, int R, const long* shape, const long* sa, const long* sb) {
  const long inner = shape[R - 1], ia = sa[R - 1], ib = sb[R - 1];
  long rows = 1;
  for (int d = 0; d < R - 1; d++) rows *= shape[d];
  const long n = rows * inner;
  const long grain = std::max(1L, 16384 / std::max(1L, inner));
  const long chunks = (rows + grain - 1) / grain;
  auto runChunk = [&](long ch, int) {
    const long r0 = ch * grain, r1 = std::min(rows, r0 + grain);
    long idx[kMaxRank] = {0};
    long oa = 0, ob = 0;
    for (long r = r0, d = R - 2; d >= 0; d--) {  // the multi-index of row r0
      idx[d] = r % shape[d];
      r /= shape[d];
      oa += idx[d] * sa[d];
      ob += idx[d] * sb[d];
    }
    for (long r = r0; r < r1; r++) {
      const float* __restrict ar = a + oa;
      const float* __restrict br = b + ob;
      float* __restrict o = out + r * inner;
      if (ia == 1 && ib == 1) {
        for (long j = 0; j < inner; j++) o[j] = bin<OP>(ar[j], br[j]);
      } else if (ia == 1) {
        const float v = br[0];
        for (long j = 0; j < inner; j++) o[j] = bin<OP>(ar[j], v);
      } else if (ib == 1) {
        const float v = ar[0];
        for (long j = 0; j < inner; j++) o[j] = bin<OP>(v, br[j]);
      } else {
        const float v = bin<OP>(ar[0], br[0]);
        for (long j = 0; j < inner; j++) o[j] = v;
      }
      for (long d = R - 2; d >= 0; d--) {  // next row: odometer over the outer axes
        oa += sa[d];
        ob += sb[d];
        if (++idx[d] < shape[d]) break;
        oa -= shape[d] * sa[d];
        ob -= shape[d] * sb[d];
        idx[d] = 0;
      }
    }
  };
  if (n > kParallelWork && chunks > 1 && num_threads() > 1) pool().run(chunks, runChunk);
  else
    for (long ch = 0; ch < chunks; ch++) runChunk(ch, 0);
}

// Sum over the middle axis of x viewed as [outer, mid, inner].
void reduce_sum(const float* x, float* out, long outer, long mid, long inner, float scale) {
  if (inner == 1) {
    pfor(outer, 64, outer * mid > kParallelWork, [&](long o) {
      const float* r = x + o * mid;
      double s = 0;
      float part = 0.f;
      for (long m = 0; m < mid; m++) {
        part += r[m];
        if ((m & 1023) == 1023) { s += part; part = 0.f; }
      }
      out[o] = float((s + part) * scale);
    });
    return;
  }
  for (long o = 0; o < outer; o++) {
    const float* xo = x + o * mid * inner;
    const long blocks = (mid + 255) / 256;
    const int nt = int(group_count(blocks, inner));
    std::vector<std::vector<double>> part(nt);
    pgroups(blocks, nt, mid * inner > kParallelWork, [&](long bk, int t) {
      std::vector<double>& acc = part[t];
      if (acc.empty()) acc.assign(size_t(inner), 0.0);
      float* blk = scratch(size_t(inner));
      std::fill(blk, blk + inner, 0.f);
      for (long m = bk * 256; m < std::min(mid, bk * 256 + 256); m++) {
        const float* r = xo + m * inner;
        for (long j = 0; j < inner; j++) blk[j] += r[j];
      }
      for (long j = 0; j < inner; j++) acc[j] += blk[j];
    });
    for (long j = 0; j < inner; j++) {
      double s = 0;
      for (int t = 0; t < nt; t++)
        if (!part[t].empty()) s += part[t][j];
      out[o * inner + j] = float(s * scale);
    }
  }
}

// Per-channel sums over rows of [rows, C] arrays, K at once (BatchNorm / PReLU statistics and gradients): f(r, b) adds
// row r's terms into b[k*C + c] (float, over blocks of 256 rows), and s[k][c] gets the totals (double, groups added in
// order: the same bits every run).
template <int K, class F>
void channel_sums(long rows, long C, F f, double* const (&s)[K]) {
  const long blocks = (rows + 255) / 256;
  const long G = group_count(blocks, K * C);
  std::vector<std::vector<double>> p(G);
  pgroups(blocks, G, rows * C > kParallelWork, [&](long bk, int t) {
    if (p[t].empty()) p[t].assign(size_t(K * C), 0.0);
    float* b = scratch(size_t(K * C));
    std::fill(b, b + K * C, 0.f);
    for (long r = bk * 256; r < std::min(rows, bk * 256 + 256); r++) f(r, b);
    for (long i = 0; i < K * C; i++) p[t][i] += b[i];
  });
  for (int k = 0; k < K; k++)
    for (long c = 0; c < C; c++) {
      double v = 0;
      for (long t = 0; t < G; t++)
        if (!p[t].empty()) v += p[t][k * C + c];
      s[k][c] = v;
    }
}

// Two sums: f(r, b1, b2).
template <class F>
void channel_sums2(long rows, long C, F f, double* s1, double* s2) {
  double* const s[2] = {s1, s2};
  channel_sums<2>(rows, C, [&](long r, float* b) { f(r, b, b + C); }, s);
}

// ---------------------------------------------------------------------------------------------------------------
// N-API glue.

struct F32 {
  float* p = nullptr;
  long n = 0;
};

bool get_f32(napi_env env, napi_value v, F32* out) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_null || t == napi_undefined) return true;  // optional operand
  napi_typedarray_type type;
  size_t len;
  void* data;
  if (napi_get_typedarray_info(env, v, &type, &len, &data, nullptr, nullptr) != napi_ok || type != napi_float32_array) {
    napi_throw_type_error(env, nullptr, "facedistill native: expected a Float32Array");
    return false;
  }
  out->p = static_cast<float*>(data);
  out->n = long(len);
  return true;
}

bool get_u8(napi_env env, napi_value v, uint8_t** p, long* n) {
  napi_typedarray_type type;
  size_t len;
  void* data;
  if (napi_get_typedarray_info(env, v, &type, &len, &data, nullptr, nullptr) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, nullptr, "facedistill native: expected a Uint8Array");
    return false;
  }
  *p = static_cast<uint8_t*>(data);
  *n = long(len);
  return true;
}

bool get_i32(napi_env env, napi_value v, const int32_t** p, long* n) {
  napi_typedarray_type type;
  size_t len;
  void* data;
  if (napi_get_typedarray_info(env, v, &type, &len, &data, nullptr, nullptr) != napi_ok || type != napi_int32_array) {
    napi_throw_type_error(env, nullptr, "facedistill native: expected an Int32Array");
    return false;
  }
  *p = static_cast<const int32_t*>(data);
  *n = long(len);
  return true;
}

double get_num(napi_env env, napi_value v) {
  double d = 0;
  napi_get_value_double(env, v, &d);
  return d;
}

template <size_t N>
bool args(napi_env env, napi_callback_info info, napi_value (&argv)[N]) {
  size_t argc = N;
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < N) {
    napi_throw_error(env, nullptr, "facedistill native: too few arguments");
    return false;
  }
  return true;
}

// conv kernels: (a: Float32Array, b: Float32Array, out: Float32Array, geometry: Int32Array[13])
template <void (*K)(const Conv&, const float*, const float*, float*)>
napi_value conv_entry(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!args(env, info, argv)) return nullptr;
  F32 a, b, o;
  const int32_t* p;
  long np;
  if (!get_f32(env, argv[0], &a) || !get_f32(env, argv[1], &b) || !get_f32(env, argv[2], &o) ||
      !get_i32(env, argv[3], &p, &np))
    return nullptr;
  if (np < 13) {
    napi_throw_error(env, nullptr, "facedistill native: conv geometry needs 13 values");
    return nullptr;
  }
  K(Conv(p), a.p, b.p, o.p);
  return nullptr;
}

// binary(op, a, b, out)
napi_value binary_entry(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!args(env, info, argv)) return nullptr;
  const int op = int(get_num(env, argv[0]));
  F32 a, b, o;
  if (!get_f32(env, argv[1], &a) || !get_f32(env, argv[2], &b) || !get_f32(env, argv[3], &o)) return nullptr;
  switch (op) {
    case ADD: binary<ADD>(a.p, a.n, b.p, b.n, o.p, o.n); break;
    case SUB: binary<SUB>(a.p, a.n, b.p, b.n, o.p, o.n); break;
    case MUL: binary<MUL>(a.p, a.n, b.p, b.n, o.p, o.n); break;
    case DIV: binary<DIV>(a.p, a.n, b.p, b.n, o.p, o.n); break;
    case SQDIFF: binary<SQDIFF>(a.p, a.n, b.p, b.n, o.p, o.n); break;
    case MAXIMUM: binary<MAXIMUM>(a.p, a.n, b.p, b.n, o.p, o.n); break;
    case MINIMUM: binary<MINIMUM>(a.p, a.n, b.p, b.n, o.p, o.n); break;
    default: napi_throw_error(env, nullptr, "facedistill native: unknown binary op");
  }
  return nullptr;
}

// matmul(a, b, out, dims: Int32Array [batch, M, N, K, transposeA, transposeB, aBatched, bBatched]): out[i] = a[i] x b[i]
// (tfjs's BatchMatMul; an operand that is not batched is shared by every batch), through the packed GEMM.
napi_value matmul_entry(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!args(env, info, argv)) return nullptr;
  F32 a, b, o;
  const int32_t* d;
  long nd;
  if (!get_f32(env, argv[0], &a) || !get_f32(env, argv[1], &b) || !get_f32(env, argv[2], &o) || !get_i32(env, argv[3], &d, &nd))
    return nullptr;
  if (nd < 8) {
    napi_throw_error(env, nullptr, "facedistill native: matmul needs 8 sizes");
    return nullptr;
  }
  const long B = d[0], M = d[1], N = d[2], K = d[3];
  const bool ta = d[4] != 0, tb = d[5] != 0;
  const long sa = d[6] ? M * K : 0, sb = d[7] ? K * N : 0;
  if (o.n != B * M * N || a.n < (d[6] ? B : 1) * M * K || b.n < (d[7] ? B : 1) * K * N) {
    napi_throw_error(env, nullptr, "facedistill native: matmul sizes do not match its operands");
    return nullptr;
  }
  // A(i, k) = ta ? a[k*M + i] : a[i*K + k]; B(k, j) = tb ? b[j*K + k] : b[k*N + j]
  const long rsa = ta ? 1 : K, csa = ta ? M : 1, rsb = tb ? 1 : N, csb = tb ? K : 1;
  if (B > 1 && M * N * K < kParallelWork && B * M * N * K >= kParallelWork) {
    peach(B, true, [&](long i, int) { gemm_st(M, N, K, a.p + i * sa, rsa, csa, b.p + i * sb, rsb, csb, o.p + i * M * N, N, false); });
  } else {
    for (long i = 0; i < B; i++) gemm(M, N, K, a.p + i * sa, rsa, csa, b.p + i * sb, rsb, csb, o.p + i * M * N, N, false);
  }
  return nullptr;
}

// concat(parts: Float32Array[], out, outer, inners: Int32Array): out viewed as [outer, sum(inners)], part i as
// [outer, inners[i]] (tfjs's Concat along one axis, and Pack).
napi_value concat_entry(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!args(env, info, argv)) return nullptr;
  uint32_t np = 0;
  if (napi_get_array_length(env, argv[0], &np) != napi_ok) {
    napi_throw_type_error(env, nullptr, "facedistill native: concat expects an array of Float32Arrays");
    return nullptr;
  }
  F32 o;
  const int32_t* in;
  long nin;
  if (!get_f32(env, argv[1], &o) || !get_i32(env, argv[3], &in, &nin)) return nullptr;
  const long outer = long(get_num(env, argv[2]));
  std::vector<const float*> src(np);
  std::vector<long> inner(np), at(np);
  long row = 0;
  for (uint32_t i = 0; i < np; i++) {
    napi_value e;
    napi_get_element(env, argv[0], i, &e);
    F32 f;
    if (!get_f32(env, e, &f)) return nullptr;
    if (long(i) >= nin || f.n != outer * in[i]) {
      napi_throw_error(env, nullptr, "facedistill native: concat part sizes do not match");
      return nullptr;
    }
    src[i] = f.p;
    inner[i] = in[i];
    at[i] = row;
    row += in[i];
  }
  if (o.n != outer * row) {
    napi_throw_error(env, nullptr, "facedistill native: concat output size does not match");
    return nullptr;
  }
  const long grain = std::max(1L, 16384 / std::max(1L, row));
  pfor(outer, grain, o.n > kParallelWork, [&](long r) {
    float* dst = o.p + r * row;
    for (uint32_t i = 0; i < np; i++) {
      const float* s0 = src[i] + r * inner[i];
      float* d0 = dst + at[i];
      if (inner[i] >= 16) std::memcpy(d0, s0, sizeof(float) * inner[i]);
      else for (long j = 0; j < inner[i]; j++) d0[j] = s0[j];
    }
  });
  return nullptr;
}

// pool(x, out, geometry: Int32Array[13] (as the convolutions, ci == co), max: 0|1): MaxPool / AvgPool, NHWC,
// dilation 1, as tfjs's cpu pool(): the max or the mean over the window's in-bounds pixels (NaN never wins a max).
napi_value pool_entry(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!args(env, info, argv)) return nullptr;
  F32 x, o;
  const int32_t* p;
  long np;
  if (!get_f32(env, argv[0], &x) || !get_f32(env, argv[1], &o) || !get_i32(env, argv[2], &p, &np)) return nullptr;
  if (np < 13) {
    napi_throw_error(env, nullptr, "facedistill native: pool geometry needs 13 values");
    return nullptr;
  }
  const Conv g(p);
  const bool isMax = get_num(env, argv[3]) != 0;
  const long C = g.ci;
  peach(g.n * g.oh, g.n * g.oh * g.ow * C * g.kh * g.kw > kParallelWork, [&](long row, int) {
    const long b = row / g.oh, oy = row % g.oh;
    long ky0, ky1;
    tap_range(oy, g.sh, g.pt, g.kh, g.h, &ky0, &ky1);
    const float* xb = x.p + b * g.h * g.w * C;
    float* yr = o.p + row * g.ow * C;
    for (long ox = 0; ox < g.ow; ox++) {
      long kx0, kx1;
      tap_range(ox, g.sw, g.pl, g.kw, g.w, &kx0, &kx1);
      float* out = yr + ox * C;
      const long iy0 = oy * g.sh - g.pt, ix0 = ox * g.sw - g.pl;
      const long count = std::max(0L, ky1 - ky0) * std::max(0L, kx1 - kx0);
      long c = 0;
      for (; c + VL <= C; c += VL) {
        vf acc = isMax ? vf{} - __builtin_inff() : vf{};
        for (long ky = ky0; ky < ky1; ky++)
          for (long kx = kx0; kx < kx1; kx++) {
            const vf v = loadu(xb + ((iy0 + ky) * g.w + ix0 + kx) * C + c);
            if (isMax) acc = v > acc ? v : acc;
            else acc += v;
          }
        storeu(out + c, isMax ? acc : acc / float(count));
      }
      for (; c < C; c++) {
        float acc = isMax ? -__builtin_inff() : 0.f;
        for (long ky = ky0; ky < ky1; ky++)
          for (long kx = kx0; kx < kx1; kx++) {
            const float v = xb[((iy0 + ky) * g.w + ix0 + kx) * C + c];
            if (isMax) acc = v > acc ? v : acc;
            else acc += v;
          }
        out[c] = isMax ? acc : acc / float(count);
      }
    }
  });
  return nullptr;
}

// binaryBroadcast(op, a, b, out, dims: Int32Array [R, shape[R], aStrides[R], bStrides[R]])
napi_value binary_bcast_entry(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!args(env, info, argv)) return nullptr;
  const int op = int(get_num(env, argv[0]));
  F32 a, b, o;
  const int32_t* d;
  long nd;
  if (!get_f32(env, argv[1], &a) || !get_f32(env, argv[2], &b) || !get_f32(env, argv[3], &o) || !get_i32(env, argv[4], &d, &nd))
    return nullptr;
  const int R = nd > 0 ? d[0] : 0;
  if (R < 1 || R > kMaxRank || nd < 1 + 3 * R) {
    napi_throw_error(env, nullptr, "facedistill native: binaryBroadcast needs 1..8 axes");
    return nullptr;
  }
  long shape[kMaxRank], sa[kMaxRank], sb[kMaxRank];
  long n = 1, lastA = 0, lastB = 0;
  for (int i = 0; i < R; i++) {
    shape[i] = d[1 + i];
    sa[i] = d[1 + R + i];
    sb[i] = d[1 + 2 * R + i];
    n *= shape[i];
    lastA += (shape[i] - 1) * sa[i];
    lastB += (shape[i] - 1) * sb[i];
  }
  if (n != o.n || lastA >= std::max(1L, a.n) || lastB >= std::max(1L, b.n) || (sa[R - 1] != 0 && sa[R - 1] != 1) ||
      (sb[R - 1] != 0 && sb[R - 1] != 1)) {
    napi_throw_error(env, nullptr, "facedistill native: binaryBroadcast geometry does not match its operands");
    return nullptr;
  }
  switch (op) {
    case ADD: binary_bcast<ADD>(a.p, b.p, o.p, R, shape, sa, sb); break;
    case SUB: binary_bcast<SUB>(a.p, b.p, o.p, R, shape, sa, sb); break;
    case MUL: binary_bcast<MUL>(a.p, b.p, o.p, R, shape, sa, sb); break;
    case DIV: binary_bcast<DIV>(a.p, b.p, o.p, R, shape, sa, sb); break;
    case SQDIFF: binary_bcast<SQDIFF>(a.p, b.p, o.p, R, shape, sa, sb); break;
    case MAXIMUM: binary_bcast<MAXIMUM>(a.p, b.p, o.p, R, shape, sa, sb); break;
    case MINIMUM: binary_bcast<MINIMUM>(a.p, b.p, o.p, R, shape, sa, sb); break;
    default: napi_throw_error(env, nullptr, "facedistill native: unknown binary op");
  }
  return nullptr;
}

// Fused convolutions: (x, filter, bias|null, preluWeights|null, out, geometry: Int32Array[13], activation, leakyAlpha)
template <void (*K)(const Conv&, const float*, const float*, float*, const Epilogue*)>
napi_value fused_conv_entry(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!args(env, info, argv)) return nullptr;
  F32 x, w, bias, alpha, o;
  const int32_t* p;
  long np;
  if (!get_f32(env, argv[0], &x) || !get_f32(env, argv[1], &w) || !get_f32(env, argv[2], &bias) ||
      !get_f32(env, argv[3], &alpha) || !get_f32(env, argv[4], &o) || !get_i32(env, argv[5], &p, &np))
    return nullptr;
  if (np < 13) {
    napi_throw_error(env, nullptr, "facedistill native: conv geometry needs 13 values");
    return nullptr;
  }
  const Conv g(p);
  const int act = int(get_num(env, argv[6]));
  Epilogue epi(g.co, act, float(get_num(env, argv[7])));
  if (act < A_LINEAR || act > A_SIGMOID || (act == A_PRELU && !alpha.p) || !epi.set(bias.p, bias.n, true) ||
      !epi.set(alpha.p, alpha.n, false)) {
    napi_throw_error(env, nullptr, "facedistill native: fused conv: bad activation, bias or PReLU weights");
    return nullptr;
  }
  if (act != A_PRELU) epi.alpha = nullptr;
  K(g, x.p, w.p, o.p, &epi);
  return nullptr;
}

// unary(op, x, out, param?): 0 square, 1 relu, 2 neg, 3 sqrt, 4 rsqrt, 5 sigmoid, 6 relu6, 7 elu, 8 leakyrelu
// (param = alpha), 9 abs, 10 exp; as tfjs's cpu kernels (exp in float)
napi_value unary_entry(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  size_t argc = 4;
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc < 3) {
    napi_throw_error(env, nullptr, "facedistill native: too few arguments");
    return nullptr;
  }
  const int op = int(get_num(env, argv[0]));
  const float param = argc >= 4 ? float(get_num(env, argv[3])) : 0.f;
  F32 x, o;
  if (!get_f32(env, argv[1], &x) || !get_f32(env, argv[2], &o)) return nullptr;
  const long n = o.n;
  const float* xp = x.p;
  float* op_ = o.p;
  switch (op) {
    case 0:
      pfor(n, 16384, n > kParallelWork, [&](long i) { op_[i] = xp[i] * xp[i]; });
      break;
    case 1:
      pfor(n, 16384, n > kParallelWork, [&](long i) { op_[i] = xp[i] < 0.f ? 0.f : xp[i]; });  // as tfjs: NaN stays NaN
      break;
    case 2:
      pfor(n, 16384, n > kParallelWork, [&](long i) { op_[i] = -xp[i]; });
      break;
    case 3:
      pfor(n, 16384, n > kParallelWork, [&](long i) { op_[i] = std::sqrt(xp[i]); });
      break;
    case 4:
      pfor(n, 16384, n > kParallelWork, [&](long i) { op_[i] = 1.f / std::sqrt(xp[i]); });
      break;
    case 5:
      pfor(n, 4096, n > kParallelWork / 8, [&](long i) { op_[i] = 1.f / (1.f + std::exp(-xp[i])); });
      break;
    case 6:
      pfor(n, 16384, n > kParallelWork, [&](long i) { const float v = xp[i]; op_[i] = v < 0.f ? 0.f : (v > 6.f ? 6.f : v); });
      break;
    case 7:
      pfor(n, 4096, n > kParallelWork / 8, [&](long i) { const float v = xp[i]; op_[i] = v >= 0.f ? v : std::exp(v) - 1.f; });
      break;
    case 8:
      pfor(n, 16384, n > kParallelWork, [&](long i) { const float v = xp[i], ng = param * v; op_[i] = v < 0.f ? ng : v; });
      break;
    case 9:
      pfor(n, 16384, n > kParallelWork, [&](long i) { op_[i] = std::fabs(xp[i]); });
      break;
    case 10:
      pfor(n, 4096, n > kParallelWork / 8, [&](long i) { op_[i] = std::exp(xp[i]); });
      break;
    default: napi_throw_error(env, nullptr, "facedistill native: unknown unary op");
  }
  return nullptr;
}

// greater(a, b, out: Uint8Array): same broadcasting rule as binary
napi_value greater_entry(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!args(env, info, argv)) return nullptr;
  F32 a, b;
  uint8_t* o;
  long n;
  if (!get_f32(env, argv[0], &a) || !get_f32(env, argv[1], &b) || !get_u8(env, argv[2], &o, &n)) return nullptr;
  const float *ap = a.p, *bp = b.p;
  const long na = a.n, nb = b.n;
  pfor(n, 16384, n > kParallelWork, [&](long i) { o[i] = ap[na == n ? i : i % na] > bp[nb == n ? i : i % nb]; });
  return nullptr;
}

// select(cond: Uint8Array, a, b, out): all the same size
napi_value select_entry(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!args(env, info, argv)) return nullptr;
  uint8_t* c;
  long n;
  F32 a, b, o;
  if (!get_u8(env, argv[0], &c, &n) || !get_f32(env, argv[1], &a) || !get_f32(env, argv[2], &b) ||
      !get_f32(env, argv[3], &o))
    return nullptr;
  const long m = o.n;
  const float *ap = a.p, *bp = b.p;  // locals: through the captured structs GCC reloads them and does not vectorise
  float* op = o.p;
  pfor(m, 16384, m > kParallelWork, [&](long i) { const float u = ap[i], w = bp[i]; op[i] = c[i] ? u : w; });
  return nullptr;
}

// reduceSum(x, out, outer, mid, inner, scale)
napi_value reduce_entry(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!args(env, info, argv)) return nullptr;
  F32 x, o;
  if (!get_f32(env, argv[0], &x) || !get_f32(env, argv[1], &o)) return nullptr;
  reduce_sum(x.p, o.p, long(get_num(env, argv[2])), long(get_num(env, argv[3])), long(get_num(env, argv[4])),
             float(get_num(env, argv[5])));
  return nullptr;
}

// batchNorm(x, mean, variance, offset|null, scale|null, out, eps): parameters of size C (x's last dim) or 1
napi_value batchnorm_entry(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!args(env, info, argv)) return nullptr;
  F32 x, mean, var, off, sc, o;
  if (!get_f32(env, argv[0], &x) || !get_f32(env, argv[1], &mean) || !get_f32(env, argv[2], &var) ||
      !get_f32(env, argv[3], &off) || !get_f32(env, argv[4], &sc) || !get_f32(env, argv[5], &o))
    return nullptr;
  const float eps = float(get_num(env, argv[6]));
  long C = std::max({mean.n, var.n, off.n, sc.n, 1L});
  std::vector<float> mul(C), add(C);
  for (long c = 0; c < C; c++) {
    const float m = mean.p[mean.n == 1 ? 0 : c], v = var.p[var.n == 1 ? 0 : c];
    const float s = sc.p ? sc.p[sc.n == 1 ? 0 : c] : 1.f, b = off.p ? off.p[off.n == 1 ? 0 : c] : 0.f;
    const float r = s / std::sqrt(v + eps);
    mul[c] = r;
    add[c] = b - m * r;  // y = x * r + (b - m r)
  }
  const long rows = x.n / C;
  const float *mp = mul.data(), *ap = add.data();
  pfor(rows, 256, x.n > kParallelWork, [&](long r) {
    const float* xr = x.p + r * C;
    float* yr = o.p + r * C;
    for (long c = 0; c < C; c++) yr[c] = xr[c] * mp[c] + ap[c];
  });
  return nullptr;
}

// batchNormStatsGrad(dy, x, mean, variance, scale|null, eps, dMean, dVariance, dScale, dOffset), parameters of size C:
// the per-channel partial derivatives of y = (x - mean) * rsqrt(variance + eps) * scale + offset (mean and variance
// being inputs, as in tfjs); dx = dy * scale * rsqrt(variance + eps) is left to a broadcast multiply.
napi_value batchnorm_grad_entry(napi_env env, napi_callback_info info) {
  napi_value argv[10];
  if (!args(env, info, argv)) return nullptr;
  F32 dy, x, mean, var, sc, dm, dv, ds, db;
  if (!get_f32(env, argv[0], &dy) || !get_f32(env, argv[1], &x) || !get_f32(env, argv[2], &mean) ||
      !get_f32(env, argv[3], &var) || !get_f32(env, argv[4], &sc) || !get_f32(env, argv[6], &dm) ||
      !get_f32(env, argv[7], &dv) || !get_f32(env, argv[8], &ds) || !get_f32(env, argv[9], &db))
    return nullptr;
  const float eps = float(get_num(env, argv[5]));
  const long C = mean.n, rows = x.n / C;
  std::vector<double> s1(C), s2(C);
  const float* mp = mean.p;
  channel_sums2(
      rows, C,
      [&](long r, float* b1, float* b2) {
        const float* g = dy.p + r * C;
        const float* xr = x.p + r * C;
        for (long c = 0; c < C; c++) {
          b1[c] += g[c];
          b2[c] += g[c] * (xr[c] - mp[c]);
        }
      },
      s1.data(), s2.data());
  for (long c = 0; c < C; c++) {
    const double s = sc.p ? sc.p[c] : 1.0, r = 1.0 / std::sqrt(double(var.p[c]) + eps);
    dm.p[c] = float(-s * r * s1[c]);
    dv.p[c] = float(-0.5 * s * r * r * r * s2[c]);
    ds.p[c] = float(r * s2[c]);
    db.p[c] = float(s1[c]);
  }
  return nullptr;
}

// prelu(x, alpha, out): alpha repeats every alpha.length elements
napi_value prelu_entry(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!args(env, info, argv)) return nullptr;
  F32 x, a, o;
  if (!get_f32(env, argv[0], &x) || !get_f32(env, argv[1], &a) || !get_f32(env, argv[2], &o)) return nullptr;
  const long C = a.n, rows = x.n / C;
  const float* al = a.p;  // locals, so that the row loop vectorises (see select)
  pfor(rows, 256, x.n > kParallelWork, [&](long r) {
    const float* xr = x.p + r * C;
    float* y = o.p + r * C;
    // Both branches computed, then selected: a conditional multiply is neither if-converted nor vectorised (FP traps)
    // and mispredicts on mixed signs.
    for (long c = 0; c < C; c++) { const float v = xr[c], neg = al[c] * v; y[c] = v > 0.f ? v : neg; }
  });
  return nullptr;
}

// preluGradInput(dy, x, alpha, dx): dx = x > 0 ? dy : alpha dy (alpha repeats every alpha.length elements)
napi_value prelu_grad_input_entry(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  if (!args(env, info, argv)) return nullptr;
  F32 dy, x, a, dx;
  if (!get_f32(env, argv[0], &dy) || !get_f32(env, argv[1], &x) || !get_f32(env, argv[2], &a) ||
      !get_f32(env, argv[3], &dx))
    return nullptr;
  const long C = a.n, rows = x.n / C;
  const float* al = a.p;
  pfor(rows, 256, x.n > kParallelWork, [&](long r) {
    const float* g = dy.p + r * C;
    const float* xr = x.p + r * C;
    float* d = dx.p + r * C;
    for (long c = 0; c < C; c++) { const float gv = g[c], neg = al[c] * gv; d[c] = xr[c] > 0.f ? gv : neg; }
  });
  return nullptr;
}

// preluGradAlpha(dy, x, dAlpha): dAlpha = sum over the repeats of (x > 0 ? 0 : dy x)
napi_value prelu_grad_alpha_entry(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  if (!args(env, info, argv)) return nullptr;
  F32 dy, x, da;
  if (!get_f32(env, argv[0], &dy) || !get_f32(env, argv[1], &x) || !get_f32(env, argv[2], &da)) return nullptr;
  const long C = da.n, rows = x.n / C;
  std::vector<double> s1(C), s2(C);
  channel_sums2(
      rows, C,
      [&](long r, float* b1, float*) {
        const float* g = dy.p + r * C;
        const float* xr = x.p + r * C;
        for (long c = 0; c < C; c++) { const float gx = g[c] * xr[c]; b1[c] += xr[c] > 0.f ? 0.f : gx; }
      },
      s1.data(), s2.data());
  for (long c = 0; c < C; c++) da.p[c] = float(s1[c]);
  return nullptr;
}

// y = x * mul + add per channel, the normalisation of training-mode BatchNorm. One function, so that the fused
// BatchNorm + PReLU kernels recompute exactly the y that bnTrain wrote.
void bn_affine(long C, const float* sc, const float* off, const float* mean, const float* var, float eps, float* mul,
               float* add) {
  for (long c = 0; c < C; c++) {
    const float r = 1.f / std::sqrt(var[c] + eps);
    mul[c] = r * sc[c];
    add[c] = off[c] - mean[c] * mul[c];
  }
}

// Training-mode BatchNorm, fused (what tf.layers' BatchNormalization computes with moments + FusedBatchNorm):
// bnTrain(x, scale, offset, y, mean, variance, eps) with the batch statistics over all rows of [rows, C].
napi_value bn_train_entry(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!args(env, info, argv)) return nullptr;
  F32 x, sc, off, y, mean, var;
  if (!get_f32(env, argv[0], &x) || !get_f32(env, argv[1], &sc) || !get_f32(env, argv[2], &off) ||
      !get_f32(env, argv[3], &y) || !get_f32(env, argv[4], &mean) || !get_f32(env, argv[5], &var))
    return nullptr;
  const float eps = float(get_num(env, argv[6]));
  const long C = mean.n, rows = x.n / C;
  // Mean and variance in one pass over x: sums of d = x - shift and d^2, the shift being the mean of 64 rows spread
  // over the batch (near the batch mean, so var = E[d^2] - E[d]^2 loses little to cancellation; a second, centred
  // pass as tf.moments does would read x once more).
  if (rows == 0) {  // an empty batch: undefined statistics, as tf.moments gives (NaN)
    for (long c = 0; c < C; c++) mean.p[c] = var.p[c] = std::nanf("");
    return nullptr;
  }
  const long probe = std::min(rows, 64L), stride = rows / probe;
  std::vector<float> shift(C);
  {
    std::vector<double> acc(C, 0.0);
    for (long i = 0; i < probe; i++)
      for (long c = 0; c < C; c++) acc[c] += x.p[i * stride * C + c];
    for (long c = 0; c < C; c++) shift[c] = float(acc[c] / double(probe));
  }
  std::vector<double> s1(C), s2(C);
  const float* sh = shift.data();
  channel_sums2(
      rows, C, [&](long r, float* b1, float* b2) {
        const float* xr = x.p + r * C;
        for (long c = 0; c < C; c++) { const float d = xr[c] - sh[c]; b1[c] += d; b2[c] += d * d; }
      },
      s1.data(), s2.data());
  for (long c = 0; c < C; c++) {
    const double m = s1[c] / double(rows);
    mean.p[c] = float(double(sh[c]) + m);
    var.p[c] = float(std::max(0.0, s2[c] / double(rows) - m * m));
  }
  const float* mp = mean.p;
  std::vector<float> mul(C), add(C);
  bn_affine(C, sc.p, off.p, mp, var.p, eps, mul.data(), add.data());
  const float *mu = mul.data(), *ad = add.data();
  pfor(rows, 256, x.n > kParallelWork, [&](long r) {
    const float* xr = x.p + r * C;
    float* yr = y.p + r * C;
    for (long c = 0; c < C; c++) yr[c] = xr[c] * mu[c] + ad[c];
  });
  return nullptr;
}

// bnTrainGradParams(dy, x, mean, variance, eps, dScale, dOffset): dScale = sum dy * xhat, dOffset = sum dy
napi_value bn_train_grad_params_entry(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!args(env, info, argv)) return nullptr;
  F32 dy, x, mean, var, ds, db;
  if (!get_f32(env, argv[0], &dy) || !get_f32(env, argv[1], &x) || !get_f32(env, argv[2], &mean) ||
      !get_f32(env, argv[3], &var) || !get_f32(env, argv[5], &ds) || !get_f32(env, argv[6], &db))
    return nullptr;
  const float eps = float(get_num(env, argv[4]));
  const long C = mean.n, rows = x.n / C;
  std::vector<double> s1(C), s2(C);
  const float* mp = mean.p;
  channel_sums2(
      rows, C,
      [&](long r, float* b1, float* b2) {
        const float* g = dy.p + r * C;
        const float* xr = x.p + r * C;
        for (long c = 0; c < C; c++) { b1[c] += g[c]; b2[c] += g[c] * (xr[c] - mp[c]); }
      },
      s1.data(), s2.data());
  for (long c = 0; c < C; c++) {
    ds.p[c] = float(s2[c] / std::sqrt(double(var.p[c]) + eps));
    db.p[c] = float(s1[c]);
  }
  return nullptr;
}

// bnTrainGradInput(dy, x, scale, mean, variance, dScale, dOffset, eps, dx), the batch statistics being functions of x:
// dx = scale r (dy - dOffset/N - (x - mean) r dScale/N), r = rsqrt(variance + eps)
napi_value bn_train_grad_input_entry(napi_env env, napi_callback_info info) {
  napi_value argv[9];
  if (!args(env, info, argv)) return nullptr;
  F32 dy, x, sc, mean, var, ds, db, dx;
  if (!get_f32(env, argv[0], &dy) || !get_f32(env, argv[1], &x) || !get_f32(env, argv[2], &sc) ||
      !get_f32(env, argv[3], &mean) || !get_f32(env, argv[4], &var) || !get_f32(env, argv[5], &ds) ||
      !get_f32(env, argv[6], &db) || !get_f32(env, argv[8], &dx))
    return nullptr;
  const float eps = float(get_num(env, argv[7]));
  const long C = mean.n, rows = x.n / C;
  std::vector<float> k(C), a(C), b(C);
  for (long c = 0; c < C; c++) {
    const double r = 1.0 / std::sqrt(double(var.p[c]) + eps);
    k[c] = float(sc.p[c] * r);
    a[c] = float(db.p[c] / double(rows));
    b[c] = float(r * ds.p[c] / double(rows));
  }
  const float *kp = k.data(), *ap = a.data(), *bp = b.data(), *mp = mean.p;
  pfor(rows, 256, x.n > kParallelWork, [&](long r) {
    const float* g = dy.p + r * C;
    const float* xr = x.p + r * C;
    float* d = dx.p + r * C;
    for (long c = 0; c < C; c++) d[c] = kp[c] * (g[c] - ap[c] - (xr[c] - mp[c]) * bp[c]);
  });
  return nullptr;
}

// adamUpdate(value, m, v, g, newValue, newM, newV, scalars[8] = beta1, 1-beta1, beta2, 1-beta2, 1-beta1^t, 1-beta2^t,
// epsilon, -lr): tfjs's AdamOptimizer update for one variable, the same float32 operations in the same order, so the
// result is bit for bit tfjs's (contraction into FMAs is switched off here: it would round differently).
#if defined(__clang__)
#define FD_NO_CONTRACT _Pragma("clang fp contract(off)")
#else
#define FD_NO_CONTRACT
#if defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif
#endif
void adam_update(long n, const float* value, const float* m, const float* v, const float* g, float* nv, float* nm,
                 float* nvv, const float* s) {
  const float b1 = s[0], omb1 = s[1], b2 = s[2], omb2 = s[3], omab1 = s[4], omab2 = s[5], eps = s[6], neglr = s[7];
  pfor(n, 16384, n > kParallelWork / 4, [&](long i) {
    FD_NO_CONTRACT
    const float gi = g[i];
    const float m1 = m[i] * b1, m2 = gi * omb1, newM = m1 + m2;
    const float g2 = gi * gi, v1 = v[i] * b2, v2 = g2 * omb2, newV = v1 + v2;
    const float bcm = newM / omab1, bcv = newV / omab2;
    const float den = std::sqrt(bcv) + eps, ratio = bcm / den, step = ratio * neglr;
    nm[i] = newM;
    nvv[i] = newV;
    nv[i] = step + value[i];
  });
}
#if !defined(__clang__) && defined(__GNUC__)
#pragma GCC pop_options
#endif

napi_value adam_entry(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!args(env, info, argv)) return nullptr;
  F32 a[8];
  for (int i = 0; i < 8; i++)
    if (!get_f32(env, argv[i], &a[i])) return nullptr;
  const long n = a[0].n;
  for (int i = 1; i < 7; i++)
    if (a[i].n != n) {
      napi_throw_error(env, nullptr, "facedistill native: adamUpdate operands differ in size");
      return nullptr;
    }
  if (a[7].n < 8) {
    napi_throw_error(env, nullptr, "facedistill native: adamUpdate needs 8 scalars");
    return nullptr;
  }
  adam_update(n, a[0].p, a[1].p, a[2].p, a[3].p, a[4].p, a[5].p, a[6].p, a[7].p);
  return nullptr;
}

// One row of bnPreluGrad's first pass (a plain function of restrict pointers, so that it vectorises).
inline void bn_prelu_grad_sums_row(long C, const float* __restrict g, const float* __restrict xr, const float* __restrict mu,
                                   const float* __restrict ad, const float* __restrict ap, const float* __restrict mp,
                                   float* __restrict b1, float* __restrict b2, float* __restrict b3) {
  for (long c = 0; c < C; c++) {
    const float y = xr[c] * mu[c] + ad[c], gc = g[c], neg = ap[c] * gc, yneg = gc * y;
    const bool pos = y > 0.f;
    const float dy = pos ? gc : neg;
    b1[c] += dy;
    b2[c] += dy * (xr[c] - mp[c]);
    b3[c] += pos ? 0.f : yneg;
  }
}

// PReLU of training-mode BatchNorm's output, from the BatchNorm input and its batch statistics (the output of the
// BatchNorm op is never read): bnPrelu(x, scale, offset, alpha, mean, variance, eps, z), z = prelu(x * mul + add).
napi_value bn_prelu_entry(napi_env env, napi_callback_info info) {
  napi_value argv[8];
  if (!args(env, info, argv)) return nullptr;
  F32 x, sc, off, al, mean, var, z;
  if (!get_f32(env, argv[0], &x) || !get_f32(env, argv[1], &sc) || !get_f32(env, argv[2], &off) ||
      !get_f32(env, argv[3], &al) || !get_f32(env, argv[4], &mean) || !get_f32(env, argv[5], &var) ||
      !get_f32(env, argv[7], &z))
    return nullptr;
  const float eps = float(get_num(env, argv[6]));
  const long C = mean.n, rows = x.n / C;
  std::vector<float> mul(C), add(C);
  bn_affine(C, sc.p, off.p, mean.p, var.p, eps, mul.data(), add.data());
  const float *mu = mul.data(), *ad = add.data(), *ap = al.p;
  pfor(rows, 256, x.n > kParallelWork, [&](long r) {
    const float* __restrict xr = x.p + r * C;
    float* __restrict zr = z.p + r * C;
    const float *__restrict mu_ = mu, *__restrict ad_ = ad, *__restrict ap_ = ap;
    for (long c = 0; c < C; c++) { const float y = xr[c] * mu_[c] + ad_[c], neg = ap_[c] * y; zr[c] = y > 0.f ? y : neg; }
  });
  return nullptr;
}

// Its gradients: bnPreluGrad(dz, x, scale, offset, alpha, mean, variance, eps, dx, dScale, dOffset, dAlpha). With
// y recomputed, dy = y > 0 ? dz : alpha dz, dAlpha = sum over y <= 0 of dz y; then BatchNorm's gradients of dy (the
// batch statistics being functions of x): dOffset = sum dy, dScale = sum dy xhat, dx = scale r (dy - dOffset/N -
// xhat dScale/N). Two passes over (dz, x): the sums, then dx.
napi_value bn_prelu_grad_entry(napi_env env, napi_callback_info info) {
  napi_value argv[12];
  if (!args(env, info, argv)) return nullptr;
  F32 dz, x, sc, off, al, mean, var, dx, ds, db, da;
  if (!get_f32(env, argv[0], &dz) || !get_f32(env, argv[1], &x) || !get_f32(env, argv[2], &sc) ||
      !get_f32(env, argv[3], &off) || !get_f32(env, argv[4], &al) || !get_f32(env, argv[5], &mean) ||
      !get_f32(env, argv[6], &var) || !get_f32(env, argv[8], &dx) || !get_f32(env, argv[9], &ds) ||
      !get_f32(env, argv[10], &db) || !get_f32(env, argv[11], &da))
    return nullptr;
  const float eps = float(get_num(env, argv[7]));
  const long C = mean.n, rows = x.n / C;
  std::vector<float> mul(C), add(C);
  bn_affine(C, sc.p, off.p, mean.p, var.p, eps, mul.data(), add.data());
  const float *mu = mul.data(), *ad = add.data(), *ap = al.p, *mp = mean.p;
  // Three sums per channel: dOffset, sum dy (x - mean), dAlpha.
  std::vector<double> sums(size_t(3 * C));
  double* const tot[3] = {sums.data(), sums.data() + C, sums.data() + 2 * C};
  channel_sums<3>(
      rows, C,
      [&](long r, float* b) { bn_prelu_grad_sums_row(C, dz.p + r * C, x.p + r * C, mu, ad, ap, mp, b, b + C, b + 2 * C); }, tot);
  std::vector<float> k(C), a(C), b(C);
  for (long c = 0; c < C; c++) {
    const double s1 = tot[0][c], s2 = tot[1][c], s3 = tot[2][c];
    const double r = 1.0 / std::sqrt(double(var.p[c]) + eps);
    db.p[c] = float(s1);
    ds.p[c] = float(s2 * r);
    da.p[c] = float(s3);
    k[c] = float(sc.p[c] * r);
    a[c] = float(s1 / double(rows));
    b[c] = float(r * (s2 * r) / double(rows));
  }
  const float *kp = k.data(), *aa = a.data(), *bp = b.data();
  pfor(rows, 256, x.n > kParallelWork, [&](long r) {
    const float* __restrict g = dz.p + r * C;
    const float* __restrict xr = x.p + r * C;
    float* __restrict d = dx.p + r * C;
    const float *__restrict mu_ = mu, *__restrict ad_ = ad, *__restrict ap_ = ap, *__restrict mp_ = mp;
    const float *__restrict kp_ = kp, *__restrict aa_ = aa, *__restrict bp_ = bp;
    for (long c = 0; c < C; c++) {
      const float y = xr[c] * mu_[c] + ad_[c], gc = g[c], neg = ap_[c] * gc;
      const float dy = y > 0.f ? gc : neg;
      d[c] = kp_[c] * (dy - aa_[c] - (xr[c] - mp_[c]) * bp_[c]);
    }
  });
  return nullptr;
}

napi_value threads_entry(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (argc >= 1) {
    napi_valuetype t;
    napi_typeof(env, argv[0], &t);
    if (t == napi_number) {
      const int n = int(get_num(env, argv[0]));
      if (n > 0) pool().resize(n);
    }
  }
  napi_value r;
  napi_create_int32(env, num_threads(), &r);
  return r;
}

napi_value simd_entry(napi_env env, napi_callback_info) {
  napi_value r;
  napi_create_int32(env, VL * 32, &r);  // vector width in bits
  return r;
}

napi_value init(napi_env env, napi_value exports) {
#if defined(M_MMAP_THRESHOLD)
  // Activations are MBs each and die within a step. glibc serves blocks above its mmap threshold with fresh mappings
  // (page faults and zeroing on every step) and trims the heap top; raise the threshold to its 32 MB maximum and keep
  // freed memory, so the next step reuses it. (A pool of huge-page mappings handed to JS as external ArrayBuffers was
  // tried and was 2x slower: V8 finalises them too late for reuse.)
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
#endif
  const napi_property_descriptor props[] = {
      {"conv2d", nullptr, conv_entry<conv2d>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dBackpropInput", nullptr, conv_entry<conv2d_backprop_input>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dBackpropFilter", nullptr, conv_entry<conv2d_backprop_filter>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"depthwise", nullptr, conv_entry<dw_forward>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"depthwiseBackpropInput", nullptr, conv_entry<dw_backprop_input>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"depthwiseBackpropFilter", nullptr, conv_entry<dw_backprop_filter>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"binary", nullptr, binary_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"binaryBroadcast", nullptr, binary_bcast_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"matmul", nullptr, matmul_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"pool", nullptr, pool_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"concat", nullptr, concat_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"conv2dFused", nullptr, fused_conv_entry<conv2d_epi>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"depthwiseFused", nullptr, fused_conv_entry<dw_forward_epi>, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"unary", nullptr, unary_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"greater", nullptr, greater_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"select", nullptr, select_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"reduceSum", nullptr, reduce_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNorm", nullptr, batchnorm_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"batchNormStatsGrad", nullptr, batchnorm_grad_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"prelu", nullptr, prelu_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"preluGradInput", nullptr, prelu_grad_input_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"preluGradAlpha", nullptr, prelu_grad_alpha_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"bnTrain", nullptr, bn_train_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"bnTrainGradParams", nullptr, bn_train_grad_params_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"bnTrainGradInput", nullptr, bn_train_grad_input_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"bnPrelu", nullptr, bn_prelu_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"bnPreluGrad", nullptr, bn_prelu_grad_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"adamUpdate", nullptr, adam_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"threads", nullptr, threads_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"simdBits", nullptr, simd_entry, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
