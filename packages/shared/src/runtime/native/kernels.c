/*
 * The project's float32 kernels for the wasm backend, compiled to WebAssembly SIMD (build.sh) and run on
 * the tfjs wasm backend's own memory: every pointer below is a byte offset into that memory, as the
 * backend reports it for a tensor. Nothing here allocates, keeps state, or uses a stack or static data
 * (the module must not write anywhere but the outputs it is given; build.sh checks that it has no data
 * and that the stack pointer is never touched).
 *
 * gemm multiplies without packing: the backend's own matMul repacks its right operand whenever that tensor
 * is new, which in a training step (new weights and new gradients every step) costs as much as a product.
 * Here the right operand is read in place, row by row, in strips of 8 columns, and the left one through two
 * strides, so the same loop runs A·B (rsa = K, csa = 1) and Aᵀ·B with A stored [K, M] (rsa = 1, csa = M).
 * The tile is 4 rows x 8 columns: 8 accumulators, 2 right-hand vectors, a splat and a product temporary,
 * the most V8 keeps in the 16 x64 vector registers without spilling. The step's elementwise work happens
 * in the tile's epilogue while the tile is still in registers.
 */
#include <wasm_simd128.h>

typedef float f32;
#define INL static inline __attribute__((always_inline))

/* Epilogues: c = f(acc) where acc = A·B at (i, j); aux and aux2 are [M, N] like c. */
enum {
  EP_STORE = 0,      /* acc */
  EP_BIAS = 1,       /* acc + bias[j] */
  EP_BIAS_RELU = 2,  /* max(acc + bias[j], 0) */
  EP_RELU_MASK = 3,  /* aux > 0 ? acc : 0  (relu derivative from the relu's output) */
  EP_SUB = 4,        /* aux - acc          (SGD step with the learning rate folded into acc) */
  EP_SUB_MUL = 5,    /* aux - aux2 * acc   (SGD step with per-parameter step sizes) */
  EP_KIND = 15,
  EP_TRANSPOSED = 16 /* flag: also write the result transposed into ct, [N, M] */
};

typedef struct {
  int mode;
  const f32* bias;
  const f32* aux;
  const f32* aux2;
  f32* c;
  f32* ct;
  int M;
  int N;
} Epi;

INL v128_t epi4(const Epi* e, v128_t acc, int i, int j) {
  int at = i * e->N + j;
  switch (e->mode & EP_KIND) {
    case EP_BIAS: return wasm_f32x4_add(acc, wasm_v128_load(e->bias + j));
    case EP_BIAS_RELU: return wasm_f32x4_pmax(wasm_f32x4_add(acc, wasm_v128_load(e->bias + j)), wasm_f32x4_splat(0.f));
    case EP_RELU_MASK: return wasm_v128_and(acc, wasm_f32x4_gt(wasm_v128_load(e->aux + at), wasm_f32x4_splat(0.f)));
    case EP_SUB: return wasm_f32x4_sub(wasm_v128_load(e->aux + at), acc);
    case EP_SUB_MUL: return wasm_f32x4_sub(wasm_v128_load(e->aux + at), wasm_f32x4_mul(wasm_v128_load(e->aux2 + at), acc));
    default: return acc;
  }
}

INL f32 epi1(const Epi* e, f32 acc, int i, int j) {
  int at = i * e->N + j;
  switch (e->mode & EP_KIND) {
    case EP_BIAS: return acc + e->bias[j];
    case EP_BIAS_RELU: { f32 v = acc + e->bias[j]; return v < 0.f ? 0.f : v; }
    case EP_RELU_MASK: return e->aux[at] > 0.f ? acc : 0.f;
    case EP_SUB: return e->aux[at] - acc;
    case EP_SUB_MUL: return e->aux[at] - e->aux2[at] * acc;
    default: return acc;
  }
}

/* Writes four row vectors r0..r3 (rows i..i+3, columns j..j+3) as four column vectors of ct. */
INL void store_transposed4(f32* ct, int M, int i, int j, v128_t r0, v128_t r1, v128_t r2, v128_t r3) {
  v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5);
  v128_t t1 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5);
  v128_t t2 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);
  v128_t t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
  f32* o = ct + j * M + i;
  wasm_v128_store(o, wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5));
  wasm_v128_store(o + M, wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7));
  wasm_v128_store(o + 2 * M, wasm_i32x4_shuffle(t2, t3, 0, 1, 4, 5));
  wasm_v128_store(o + 3 * M, wasm_i32x4_shuffle(t2, t3, 2, 3, 6, 7));
}

INL void store_lanes(f32* ct, int M, int i, int j, v128_t v) {
  ct[j * M + i] = wasm_f32x4_extract_lane(v, 0);
  ct[(j + 1) * M + i] = wasm_f32x4_extract_lane(v, 1);
  ct[(j + 2) * M + i] = wasm_f32x4_extract_lane(v, 2);
  ct[(j + 3) * M + i] = wasm_f32x4_extract_lane(v, 3);
}

#define ROWS1(X) X(0)
#define ROWS2(X) X(0) X(1)
#define ROWS3(X) X(0) X(1) X(2)
#define ROWS4(X) X(0) X(1) X(2) X(3)

/* Transposed writes of a finished tile: shuffles for a full 4-row tile, lane by lane for the last rows. */
#define T8_LANES(r) store_lanes(e->ct, e->M, i + r, j, x##r); store_lanes(e->ct, e->M, i + r, j + 4, y##r);
#define T4_LANES(r) store_lanes(e->ct, e->M, i + r, j, x##r);
#define T8_1 ROWS1(T8_LANES)
#define T8_2 ROWS2(T8_LANES)
#define T8_3 ROWS3(T8_LANES)
#define T8_4 store_transposed4(e->ct, e->M, i, j, x0, x1, x2, x3); store_transposed4(e->ct, e->M, i, j + 4, y0, y1, y2, y3);
#define T4_1 ROWS1(T4_LANES)
#define T4_2 ROWS2(T4_LANES)
#define T4_3 ROWS3(T4_LANES)
#define T4_4 store_transposed4(e->ct, e->M, i, j, x0, x1, x2, x3);

/*
 * A tile accumulates k in [k0, k0 + K) (K >= 1: a do-while, since with a zero-trip path clang turns the
 * zero tile into memset calls). `first`: start from zero, else from the partial sums left in c. `last`:
 * apply the epilogue, else leave the partial sums in c for the next slice of k.
 */
#define CAT(r) (e->c + (i + r) * e->N + j)
#define DECL8(r) v128_t x##r = first ? wasm_f32x4_splat(0.f) : wasm_v128_load(CAT(r)), \
    y##r = first ? wasm_f32x4_splat(0.f) : wasm_v128_load(CAT(r) + 4);
#define FMA8(r) { v128_t s = wasm_v128_load32_splat(a + r * rsa); \
    x##r = wasm_f32x4_add(x##r, wasm_f32x4_mul(s, b0)); y##r = wasm_f32x4_add(y##r, wasm_f32x4_mul(s, b1)); }
#define EPI8(r) if (last) { x##r = epi4(e, x##r, i + r, j); y##r = epi4(e, y##r, i + r, j + 4); } \
    wasm_v128_store(CAT(r), x##r); wasm_v128_store(CAT(r) + 4, y##r);
#define TILE8(MR) \
  INL void tile8_##MR(int K, const f32* a, int rsa, int csa, const f32* b, const Epi* e, int i, int j, int first, int last) { \
    ROWS##MR(DECL8) \
    int ldb = e->N; \
    do { \
      v128_t b0 = wasm_v128_load(b), b1 = wasm_v128_load(b + 4); \
      b += ldb; \
      ROWS##MR(FMA8) \
      a += csa; \
    } while (--K); \
    ROWS##MR(EPI8) \
    if (last && (e->mode & EP_TRANSPOSED)) { T8_##MR } \
  }

#define DECL4(r) v128_t x##r = first ? wasm_f32x4_splat(0.f) : wasm_v128_load(CAT(r));
#define FMA4(r) x##r = wasm_f32x4_add(x##r, wasm_f32x4_mul(wasm_v128_load32_splat(a + r * rsa), b0));
#define EPI4(r) if (last) x##r = epi4(e, x##r, i + r, j); wasm_v128_store(CAT(r), x##r);
#define TILE4(MR) \
  INL void tile4_##MR(int K, const f32* a, int rsa, int csa, const f32* b, const Epi* e, int i, int j, int first, int last) { \
    ROWS##MR(DECL4) \
    int ldb = e->N; \
    do { \
      v128_t b0 = wasm_v128_load(b); \
      b += ldb; \
      ROWS##MR(FMA4) \
      a += csa; \
    } while (--K); \
    ROWS##MR(EPI4) \
    if (last && (e->mode & EP_TRANSPOSED)) { T4_##MR } \
  }

#define DECL1(r) f32 s##r = 0.f;
#define FMA1(r) s##r += a[r * rsa] * bv;
#define EPI1(r) s##r = epi1(e, s##r, i + r, j); e->c[(i + r) * e->N + j] = s##r; \
    if (e->mode & EP_TRANSPOSED) e->ct[j * e->M + i + r] = s##r;
#define TILE1(MR) \
  INL void tile1_##MR(int K, const f32* a, int rsa, int csa, const f32* b, const Epi* e, int i, int j) { \
    ROWS##MR(DECL1) \
    int ldb = e->N; \
    do { \
      f32 bv = *b; \
      b += ldb; \
      ROWS##MR(FMA1) \
      a += csa; \
    } while (--K); \
    ROWS##MR(EPI1) \
  }

/* Columns [0, nv) of rows i..i+MR-1 for one slice of k: strips of 8, then one of 4 (nv = N rounded down to 4). */
#define ROWBLOCK(MR) \
  TILE8(MR) TILE4(MR) TILE1(MR) \
  INL void rows_##MR(int K, const f32* a, int rsa, int csa, const f32* b, const Epi* e, int i, int nv, int first, int last) { \
    const f32* ai = a + i * rsa; \
    int j = 0; \
    for (; j + 8 <= nv; j += 8) tile8_##MR(K, ai, rsa, csa, b + j, e, i, j, first, last); \
    if (j < nv) tile4_##MR(K, ai, rsa, csa, b + j, e, i, j, first, last); \
  }

ROWBLOCK(1)
ROWBLOCK(2)
ROWBLOCK(3)
ROWBLOCK(4)

/*
 * The last N % 4 columns, four rows at a time, read B down a column. In the Aᵀ form (rsa = 1) four rows of
 * A lie side by side: one vector of A times a splat of B accumulates a column of four results. In the A·B
 * form (csa = 1) a row of A lies along k: four k at a time, against the column of B gathered into a vector,
 * summed across lanes at the end. Either way the output layer of a detector (one or a few logits) runs at
 * vector speed instead of one multiply at a time.
 */
INL void finish_column(const Epi* e, int i, int j, v128_t v) {
  f32 r0 = epi1(e, wasm_f32x4_extract_lane(v, 0), i, j);
  f32 r1 = epi1(e, wasm_f32x4_extract_lane(v, 1), i + 1, j);
  f32 r2 = epi1(e, wasm_f32x4_extract_lane(v, 2), i + 2, j);
  f32 r3 = epi1(e, wasm_f32x4_extract_lane(v, 3), i + 3, j);
  int N = e->N;
  e->c[i * N + j] = r0;
  e->c[(i + 1) * N + j] = r1;
  e->c[(i + 2) * N + j] = r2;
  e->c[(i + 3) * N + j] = r3;
  if (e->mode & EP_TRANSPOSED) wasm_v128_store(e->ct + j * e->M + i, wasm_f32x4_make(r0, r1, r2, r3));
}

INL void column_t(int K, const f32* a, int M, const f32* b, const Epi* e, int i, int j) {
  v128_t acc = wasm_f32x4_splat(0.f);
  int N = e->N;
  do {
    acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_v128_load(a), wasm_v128_load32_splat(b)));
    a += M;
    b += N;
  } while (--K);
  finish_column(e, i, j, acc);
}

INL v128_t sum_lanes4(v128_t r0, v128_t r1, v128_t r2, v128_t r3) {
  v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5);
  v128_t t1 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5);
  v128_t t2 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);
  v128_t t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
  return wasm_f32x4_add(wasm_f32x4_add(wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5), wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7)),
                        wasm_f32x4_add(wasm_i32x4_shuffle(t2, t3, 0, 1, 4, 5), wasm_i32x4_shuffle(t2, t3, 2, 3, 6, 7)));
}

#define GATHER(p, N) wasm_f32x4_make((p)[0], (p)[N], (p)[2 * (N)], (p)[3 * (N)])
#define DOT_ROW(r) v128_t a##r = wasm_v128_load(a + r * lda + k); \
    x##r = wasm_f32x4_add(x##r, wasm_f32x4_mul(a##r, bv));
#define DOT_TAIL(r) t##r += a[r * lda + k] * bs;
INL void column_n(int K, const f32* a, int lda, const f32* b, const Epi* e, int i, int j) {
  v128_t x0 = wasm_f32x4_splat(0.f), x1 = x0, x2 = x0, x3 = x0;
  int N = e->N, k = 0;
  for (; k + 4 <= K; k += 4) {
    v128_t bv = GATHER(b + k * N, N);
    ROWS4(DOT_ROW)
  }
  f32 t0 = 0.f, t1 = 0.f, t2 = 0.f, t3 = 0.f;
  for (; k < K; k++) {
    f32 bs = b[k * N];
    ROWS4(DOT_TAIL)
  }
  finish_column(e, i, j, wasm_f32x4_add(sum_lanes4(x0, x1, x2, x3), wasm_f32x4_make(t0, t1, t2, t3)));
}

/* K is cut into slices of this many for the Aᵀ form, whose A panel uses 16 bytes of each cache line it touches. */
#define KC 128

/*
 * c[M, N] = epilogue(A·B), B [K, N] row-major, A(i, k) = a[i * rsa + k * csa]; does nothing unless M, N
 * and K are all positive (callers handle an empty product). With EP_TRANSPOSED
 * the result is also written to ct as [N, M]. c must not overlap a, b, aux, aux2 or ct (partial sums are
 * kept in c between slices of k).
 */
void gemm(const f32* a, int rsa, int csa, const f32* b, f32* c, int M, int N, int K, int mode,
          const f32* bias, const f32* aux, const f32* aux2, f32* ct) {
  if (M < 1 || N < 1 || K < 1) return;
  Epi e = { mode, bias, aux, aux2, c, ct, M, N };
  int nv = N & ~3;
  int M4 = M & ~3;
  if (nv > 0) {
    int kc = rsa == 1 && K > KC ? KC : K;
    for (int k0 = 0; k0 < K; k0 += kc) {
      int ks = K - k0 < kc ? K - k0 : kc;
      int first = k0 == 0, last = k0 + ks == K;
      const f32* ak = a + k0 * csa;
      const f32* bk = b + k0 * N;
      for (int i = 0; i < M4; i += 4) rows_4(ks, ak, rsa, csa, bk, &e, i, nv, first, last);
      switch (M - M4) {
        case 3: rows_3(ks, ak, rsa, csa, bk, &e, M4, nv, first, last); break;
        case 2: rows_2(ks, ak, rsa, csa, bk, &e, M4, nv, first, last); break;
        case 1: rows_1(ks, ak, rsa, csa, bk, &e, M4, nv, first, last); break;
        default: break;
      }
    }
  }
  for (int j = nv; j < N; j++) {
    int i = 0;
    if (rsa == 1) for (; i < M4; i += 4) column_t(K, a + i, csa, b + j, &e, i, j);
    else if (csa == 1) for (; i < M4; i += 4) column_n(K, a + i * rsa, rsa, b + j, &e, i, j);
    for (; i < M; i++) tile1_1(K, a + i * rsa, rsa, csa, b + j, &e, i, j);
  }
}

/*
 * Column sums of g [n, N] (none when n is 0): out[j] = sum_i g[i, j] (mode 0), old[j] - sum (mode 1),
 * old[j] - s[j] * sum (mode 2). The bias gradient and bias update of a dense layer.
 */
INL f32 colsum_out(int mode, const f32* old, const f32* s, int j, f32 sum) {
  return mode == 0 ? sum : mode == 1 ? old[j] - sum : old[j] - s[j] * sum;
}

INL void colsum_out4(int mode, const f32* old, const f32* s, f32* out, int j, v128_t sum) {
  if (mode == 1) sum = wasm_f32x4_sub(wasm_v128_load(old + j), sum);
  else if (mode == 2) sum = wasm_f32x4_sub(wasm_v128_load(old + j), wasm_f32x4_mul(wasm_v128_load(s + j), sum));
  wasm_v128_store(out + j, sum);
}

void colsum(const f32* g, int n, int N, int mode, const f32* old, const f32* s, f32* out) {
  int j = 0;
  for (; n > 0 && j + 16 <= N; j += 16) {
    v128_t s0 = wasm_f32x4_splat(0.f), s1 = s0, s2 = s0, s3 = s0;
    const f32* p = g + j;
    int k = n;
    do {
      s0 = wasm_f32x4_add(s0, wasm_v128_load(p));
      s1 = wasm_f32x4_add(s1, wasm_v128_load(p + 4));
      s2 = wasm_f32x4_add(s2, wasm_v128_load(p + 8));
      s3 = wasm_f32x4_add(s3, wasm_v128_load(p + 12));
      p += N;
    } while (--k);
    colsum_out4(mode, old, s, out, j, s0);
    colsum_out4(mode, old, s, out, j + 4, s1);
    colsum_out4(mode, old, s, out, j + 8, s2);
    colsum_out4(mode, old, s, out, j + 12, s3);
  }
  for (; j < N; j++) {
    f32 sum = 0.f;
    const f32* p = g + j;
    for (int i = 0; i < n; i++, p += N) sum += *p;
    out[j] = colsum_out(mode, old, s, j, sum);
  }
}
