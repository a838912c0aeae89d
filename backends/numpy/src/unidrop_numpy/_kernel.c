/* unidrop_numpy._kernel: mask stream v1 dropout of a strided array, compiled for the CPU.
 *
 * Every rule of the mask stream (Philox4x32-10, the keep decision, scale, select, 16-bit
 * rounding) comes from the core's header, unidrop/mask_stream_v1.h (unidrop.get_include());
 * this file only walks the array. Philox blocks are made TILE_BLOCKS at a time, by the header's
 * AVX-512 or AVX2 rounds where the CPU has them and otherwise by its portable loop, which the
 * compiler vectorizes; then the elements of the tile are scaled and selected in a second loop
 * (AVX-512: sixteen at a time; AVX2 and F16C: eight or sixteen; else the compiler's vectorizing).
 *
 * Entry points take any objects with the buffer protocol (NumPy arrays, bfloat16 ones included:
 * only item size and strides are read) and release the GIL while they compute. A call computes
 * the logical C-order elements start .. stop-1 of the output, so several threads may each take a
 * slice: every element depends on its own index alone, so results never depend on the split.
 *
 * Builds: the portable baseline of the target (SSE2 on x86-64, NEON on arm64). On x86-64 with
 * GCC or clang on Linux the hot loops are also compiled for AVX2 and picked at load time
 * (target_clones, glibc ifunc), so one wheel runs on every x86-64 CPU. The AVX-512 (BF16 included),
 * AVX2 and F16C intrinsics are picked at import (__builtin_cpu_supports); UNIDROP_NUMPY_SIMD caps
 * them (avx512bf16, the default; avx512; avx2; none), so that the narrower paths are testable on
 * a CPU that has the widest.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "unidrop/mask_stream_v1.h"

#if defined(__x86_64__) && defined(__linux__) && \
    (defined(__clang__) ? (__clang_major__ >= 14) : (defined(__GNUC__) && __GNUC__ >= 6))
#define UD_CLONES __attribute__((target_clones("avx2", "default")))
#define UD_CLONES_NAME "x86-64 baseline + AVX2 clones"
#elif defined(__aarch64__) || defined(_M_ARM64)
#define UD_CLONES
#define UD_CLONES_NAME "arm64 NEON"
#else
#define UD_CLONES
#define UD_CLONES_NAME "portable baseline"
#endif

/* Philox blocks made at a time: 4 elements each, 16 KiB of words per thread on the stack. */
#define TILE_BLOCKS 1024
#define MAX_DIMS 64
/* Calls on fewer elements than this keep the GIL: releasing and taking it back would cost more
 * than the work (NumPy's ufuncs make the same trade for small arrays). */
#define GIL_FREE_FROM 4096

enum { KIND_FLOAT16 = 0, KIND_BFLOAT16 = 1, KIND_FLOAT32 = 2, KIND_FLOAT64 = 3 };

/* The words of mask indices start .. start+n-1 (any start; n <= 4 * TILE_BLOCKS): the header's
 * ud_fill_words, compiled here once per clone so that its block loop vectorizes. */
/* The SIMD levels, narrowest first, by the names UNIDROP_NUMPY_SIMD and _kernel.SIMD use. */
enum { SIMD_NONE = 0, SIMD_AVX2 = 1, SIMD_AVX512 = 2, SIMD_AVX512_BF16 = 3 };
static const char *const SIMD_NAMES[] = {"none", "avx2", "avx512", "avx512bf16"};
/* Set at import: the widest level the CPU has (AVX2; AVX-512F; AVX-512 with BF16, BW and DQ) and
 * UNIDROP_NUMPY_SIMD allows. */
static int simd_level = SIMD_NONE;
UD_CLONES static void fill_words(ud_u32 *restrict words, ud_u64 start, ud_u64 n, ud_rng r) {
#if UD_HAVE_AVX512_BLOCKS
    if (simd_level >= SIMD_AVX512) {
        ud_fill_words_by(words, start, n, r, ud_whole_blocks_avx512);
        return;
    }
#endif
#if UD_HAVE_AVX2_BLOCKS
    if (simd_level >= SIMD_AVX2) {
        ud_fill_words_by(words, start, n, r, ud_whole_blocks_avx2);
        return;
    }
#endif
    ud_fill_words(words, start, n, r);
}

/* The words of mask indices m0, m0 + ms, m0 + 2 ms, ... (n of them, n <= 4 * TILE_BLOCKS): one
 * block per element, for an innermost axis that is not the mask's (a transposed walk). */
UD_CLONES static void gather_words(ud_u32 *restrict u, ud_u64 m0, ud_u64 ms, ud_u64 n, ud_rng r) {
    for (ud_u64 j = 0; j < n; ++j) {
        ud_u64 mi = m0 + j * ms;
        u[j] = ud_word(ud_philox_block_wide(mi >> 2, r), (ud_u32)(mi & 3u));
    }
}

/* The scaled value v if the element is kept, else +0: an AND of its bits with a mask of all ones
 * or all zeros, so the loop has no branch whose outcome depends on p (a select, as the spec says:
 * a dropped NaN or -0 becomes +0). */
#define SELECT(STORAGE, BITS, V, U, T) select_##BITS((V), (U), (T))
#define DEFINE_SELECT(BITS, STORAGE)                                                               \
    static inline STORAGE select_##BITS(STORAGE v, ud_u32 u, ud_u32 t) {                          \
        BITS b;                                                                                    \
        memcpy(&b, &v, sizeof b);                                                                  \
        b &= (BITS)0 - (BITS)ud_keep(u, t);                                                        \
        memcpy(&v, &b, sizeof v);                                                                  \
        return v;                                                                                  \
    }
DEFINE_SELECT(ud_u16, ud_u16)
DEFINE_SELECT(ud_u32, float)
DEFINE_SELECT(ud_u64, double)

/* One run along the innermost axis: n elements at byte stride xs from x, to y (contiguous), with
 * mask words u[0..n-1]. Scaled values come from the core header. (run_tile writes the keep bytes
 * of every kind of run.) */
#define DEFINE_RUN(NAME, STORAGE, SCALE, COMPUTE, BITS)                                            \
    UD_CLONES static void run_##NAME(const char *restrict x, ud_i64 xs, STORAGE *restrict y,      \
                                     const ud_u32 *restrict u, ud_u64 n, ud_u32 t, COMPUTE s) {    \
        if (xs == (ud_i64)sizeof(STORAGE)) {                                                       \
            const STORAGE *restrict xc = (const STORAGE *)x;                                       \
            for (ud_u64 j = 0; j < n; ++j) {                                                       \
                y[j] = SELECT(STORAGE, BITS, SCALE(xc[j], s), u[j], t);                            \
            }                                                                                      \
        } else {                                                                                   \
            for (ud_u64 j = 0; j < n; ++j) {                                                       \
                STORAGE xv;                                                                        \
                memcpy(&xv, x + (ud_i64)j * xs, sizeof xv);                                        \
                y[j] = SELECT(STORAGE, BITS, SCALE(xv, s), u[j], t);                               \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
    /* A run whose elements all share one mask word (the innermost axis is broadcast). */          \
    static void fill_##NAME(const char *x, ud_i64 xs, STORAGE *y, ud_u64 n, int keep, COMPUTE s) { \
        for (ud_u64 j = 0; j < n; ++j) {                                                           \
            STORAGE xv;                                                                            \
            memcpy(&xv, x + (ud_i64)j * xs, sizeof xv);                                            \
            y[j] = keep ? SCALE(xv, s) : (STORAGE)0;                                               \
        }                                                                                          \
    }

DEFINE_RUN(f16, ud_u16, ud_scale_f16, float, ud_u16)

#if defined(__x86_64__) && defined(__FLT16_MAX__) && (defined(__GNUC__) || defined(__clang__))
/* float16 with F16C's conversions (vcvtph2ps, and vcvtps2ph rounding to nearest even: the same
 * bits as the header's integer routines, NaN payloads aside), picked at load where the CPU has
 * them. The scale and select are the header's. */
#define UD_HAVE_F16C 1
#include <immintrin.h>
__attribute__((target("avx2,f16c"))) static ud_u16 scale_f16c(ud_u16 x, float s) {
    _Float16 h, r;
    ud_u16 out;
    memcpy(&h, &x, sizeof h);
    r = (_Float16)ud_scale_f32((float)h, s);
    memcpy(&out, &r, sizeof out);
    return out;
}

__attribute__((target("avx2,f16c"))) static void run_f16c(const char *restrict x, ud_i64 xs,
                                                           ud_u16 *restrict y, const ud_u32 *restrict u,
                                                           ud_u64 n, ud_u32 t, float s) {
    if (xs == 2) {
        const ud_u16 *restrict xc = (const ud_u16 *)x;
        const __m256 scale = _mm256_set1_ps(s);
        const __m256i threshold = _mm256_set1_epi32((int)t);
        ud_u64 j = 0;
        for (; j + 8 <= n; j += 8) { /* eight at a time: the scalar loop's instructions, packed */
            __m256 v = _mm256_mul_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(xc + j))), scale);
            __m256i w = _mm256_loadu_si256((const __m256i *)(u + j));
            __m256i keep = _mm256_cmpeq_epi32(_mm256_max_epu32(w, threshold), w); /* w >= t */
            /* the select before the rounding: +0.0f rounds to the float16 +0, every other value
             * is untouched, so the bits are those of rounding first (and no narrowing of the mask) */
            v = _mm256_and_ps(v, _mm256_castsi256_ps(keep));
            _mm_storeu_si128((__m128i *)(y + j), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
        }
        for (; j < n; ++j) {
            y[j] = select_ud_u16(scale_f16c(xc[j], s), u[j], t);
        }
    } else {
        for (ud_u64 j = 0; j < n; ++j) {
            ud_u16 xv;
            memcpy(&xv, x + (ud_i64)j * xs, sizeof xv);
            y[j] = select_ud_u16(scale_f16c(xv, s), u[j], t);
        }
    }
}
static int have_f16c;
#else
#define UD_HAVE_F16C 0
#endif
DEFINE_RUN(bf16, ud_u16, ud_scale_bf16, float, ud_u16)
DEFINE_RUN(f32, float, ud_scale_f32, float, ud_u32)

#if UD_HAVE_AVX2_BLOCKS
/* run_f32 for a contiguous run with AVX2, eight at a time (the compiler vectorized the generic
 * loop only in part): the multiply is the IEEE single-precision one of ud_scale_f32, and the
 * select the same AND with an all-ones or all-zeros mask of u >= t. */
__attribute__((target("avx2"))) static void run_f32_avx2(const float *restrict x, float *restrict y,
                                                         const ud_u32 *restrict u, ud_u64 n, ud_u32 t, float s) {
    const __m256 scale = _mm256_set1_ps(s);
    const __m256i threshold = _mm256_set1_epi32((int)t);
    ud_u64 j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + j), scale);
        __m256i w = _mm256_loadu_si256((const __m256i *)(u + j));
        __m256i keep = _mm256_cmpeq_epi32(_mm256_max_epu32(w, threshold), w); /* w >= t */
        _mm256_storeu_ps(y + j, _mm256_and_ps(v, _mm256_castsi256_ps(keep)));
    }
    for (; j < n; ++j) y[j] = select_ud_u32(ud_scale_f32(x[j], s), u[j], t);
}

/* run_bf16 for a contiguous run with AVX2, sixteen at a time: each bfloat16 becomes the high half
 * of its float (an interleave with zeros, in 128-bit lanes), the IEEE single-precision multiply of
 * ud_scale_bf16, the header's rounding rule on all lanes (UD_BF16_ROUND_NOT_NAN_BITS, or
 * UD_BF16_ROUND_BITS for a group holding a NaN), a pack back to 16 bits (which undoes the
 * interleave's order) and the same AND with the keep mask of u >= t. */
typedef ud_u32 ud_v8u32 __attribute__((vector_size(32)));
__attribute__((target("avx2"))) static inline __m256i round_bf16_avx2(__m256 v, int any_nan) {
    ud_v8u32 f = (ud_v8u32)_mm256_castps_si256(v);
    return any_nan ? (__m256i)UD_BF16_ROUND_BITS(f) : (__m256i)UD_BF16_ROUND_NOT_NAN_BITS(f);
}

__attribute__((target("avx2"))) static void run_bf16_avx2(const ud_u16 *restrict x, ud_u16 *restrict y,
                                                          const ud_u32 *restrict u, ud_u64 n, ud_u32 t, float s) {
    const __m256 scale = _mm256_set1_ps(s);
    const __m256i threshold = _mm256_set1_epi32((int)t), zero = _mm256_setzero_si256();
    ud_u64 j = 0;
    for (; j + 16 <= n; j += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(x + j));
        /* lanes: elements 0-3 and 8-11, then 4-7 and 12-15 */
        __m256 lo = _mm256_mul_ps(_mm256_castsi256_ps(_mm256_unpacklo_epi16(zero, h)), scale);
        __m256 hi = _mm256_mul_ps(_mm256_castsi256_ps(_mm256_unpackhi_epi16(zero, h)), scale);
        int any_nan = _mm256_movemask_ps(_mm256_cmp_ps(lo, hi, _CMP_UNORD_Q)) != 0;
        /* every lane < 2^16: the unsigned-saturating pack is exact, and restores elements 0-15 */
        __m256i out = _mm256_packus_epi32(round_bf16_avx2(lo, any_nan), round_bf16_avx2(hi, any_nan));
        __m256i w0 = _mm256_loadu_si256((const __m256i *)(u + j));
        __m256i w1 = _mm256_loadu_si256((const __m256i *)(u + j + 8));
        __m256i k0 = _mm256_cmpeq_epi32(_mm256_max_epu32(w0, threshold), w0); /* w >= t */
        __m256i k1 = _mm256_cmpeq_epi32(_mm256_max_epu32(w1, threshold), w1);
        /* the signed pack keeps all-ones and zeros; its order (0-3, 8-11, 4-7, 12-15 by 64 bits)
         * is put right by one permute */
        __m256i keep = _mm256_permute4x64_epi64(_mm256_packs_epi32(k0, k1), 0xD8);
        _mm256_storeu_si256((__m256i *)(y + j), _mm256_and_si256(out, keep));
    }
    for (; j < n; ++j) y[j] = select_ud_u16(ud_scale_bf16(x[j], s), u[j], t);
}
#endif

#if UD_HAVE_AVX512_BLOCKS && UD_HAVE_F16C
/* The contiguous runs with AVX-512F, sixteen at a time. The keep decision u >= t is a mask
 * register, and the multiply zeroes the dropped lanes (the select: +0 whatever x was, a NaN
 * included) before any rounding, which keeps +0 as it is. float32 is the IEEE single-precision
 * multiply of ud_scale_f32; float16 converts with the F16C instructions' 512-bit forms (the same
 * rounding as run_f16c); bfloat16 rounds by the header's rule, UD_BF16_ROUND_NOT_NAN_BITS unless a
 * kept lane is NaN. The last n mod 16 elements take the scalar forms. */
#define UD_KEEP_AVX512(U, J, THRESHOLD) \
    _mm512_cmpge_epu32_mask(_mm512_loadu_si512((const void *)((U) + (J))), (THRESHOLD))

__attribute__((target("avx512f"))) static void run_f32_avx512(const float *restrict x, float *restrict y,
                                                             const ud_u32 *restrict u, ud_u64 n, ud_u32 t, float s) {
    const __m512 scale = _mm512_set1_ps(s);
    const __m512i threshold = _mm512_set1_epi32((int)t);
    ud_u64 j = 0;
    for (; j + 16 <= n; j += 16)
        _mm512_storeu_ps(y + j, _mm512_maskz_mul_ps(UD_KEEP_AVX512(u, j, threshold), _mm512_loadu_ps(x + j), scale));
    for (; j < n; ++j) y[j] = select_ud_u32(ud_scale_f32(x[j], s), u[j], t);
}

__attribute__((target("avx512f,f16c"))) static void run_f16_avx512(const ud_u16 *restrict x, ud_u16 *restrict y,
                                                                  const ud_u32 *restrict u, ud_u64 n, ud_u32 t, float s) {
    const __m512 scale = _mm512_set1_ps(s);
    const __m512i threshold = _mm512_set1_epi32((int)t);
    ud_u64 j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 v = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + j)));
        v = _mm512_maskz_mul_ps(UD_KEEP_AVX512(u, j, threshold), v, scale);
        _mm256_storeu_si256((__m256i *)(y + j), _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
    }
    for (; j < n; ++j) y[j] = select_ud_u16(scale_f16c(x[j], s), u[j], t);
}

typedef ud_u32 ud_v16u32 __attribute__((vector_size(64)));
/* Sixteen bfloat16 at x, widened to float, scaled, and +0 where u < t. */
__attribute__((target("avx512f"))) static inline __m512 scaled_bf16_avx512(const ud_u16 *x, const ud_u32 *u,
                                                                          __m512i threshold, __m512 scale) {
    __m512i wide = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)x)), 16);
    return _mm512_maskz_mul_ps(UD_KEEP_AVX512(u, 0, threshold), _mm512_castsi512_ps(wide), scale);
}

/* Sixteen floats rounded to bfloat16 by the header's rule (every lane < 2^16 after the rounding:
 * the narrowing to 16 bits is exact). */
__attribute__((target("avx512f"))) static inline __m256i rounded_bf16_avx512(__m512 v) {
    ud_v16u32 f = (ud_v16u32)_mm512_castps_si512(v);
    __m512i bits = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) ? (__m512i)UD_BF16_ROUND_BITS(f)
                                                           : (__m512i)UD_BF16_ROUND_NOT_NAN_BITS(f);
    return _mm512_cvtepi32_epi16(bits);
}

__attribute__((target("avx512f"))) static void run_bf16_avx512(const ud_u16 *restrict x, ud_u16 *restrict y,
                                                              const ud_u32 *restrict u, ud_u64 n, ud_u32 t, float s) {
    const __m512 scale = _mm512_set1_ps(s);
    const __m512i threshold = _mm512_set1_epi32((int)t);
    ud_u64 j = 0;
    for (; j + 16 <= n; j += 16)
        _mm256_storeu_si256((__m256i *)(y + j), rounded_bf16_avx512(scaled_bf16_avx512(x + j, u + j, threshold, scale)));
    for (; j < n; ++j) y[j] = select_ud_u16(ud_scale_bf16(x[j], s), u[j], t);
}

#if defined(__clang__) ? (__clang_major__ >= 11) : (__GNUC__ >= 10)
#define UD_HAVE_AVX512_BF16 1
/* run_bf16_avx512 with AVX512-BF16's conversion, thirty-two at a time: vcvtne2ps2bf16 rounds to
 * nearest even as the header's rule does, but it reads float32 subnormals as zero and does not
 * keep NaN payloads, so a group holding a NaN or a subnormal (one vfpclassps each half) takes the
 * header's rule instead. */
__attribute__((target("avx512f,avx512bw,avx512dq,avx512bf16"))) static void
run_bf16_avx512bf16(const ud_u16 *restrict x, ud_u16 *restrict y, const ud_u32 *restrict u, ud_u64 n, ud_u32 t,
                    float s) {
    enum { QUIET_NAN = 0x01, SUBNORMAL = 0x20, SIGNALLING_NAN = 0x80 };
    const __m512 scale = _mm512_set1_ps(s);
    const __m512i threshold = _mm512_set1_epi32((int)t);
    ud_u64 j = 0;
    for (; j + 32 <= n; j += 32) {
        __m512 lo = scaled_bf16_avx512(x + j, u + j, threshold, scale);
        __m512 hi = scaled_bf16_avx512(x + j + 16, u + j + 16, threshold, scale);
        if ((_mm512_fpclass_ps_mask(lo, QUIET_NAN | SUBNORMAL | SIGNALLING_NAN) |
             _mm512_fpclass_ps_mask(hi, QUIET_NAN | SUBNORMAL | SIGNALLING_NAN)) == 0) {
            /* the low sixteen results come from the second operand */
            _mm512_storeu_si512((void *)(y + j), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        } else {
            _mm256_storeu_si256((__m256i *)(y + j), rounded_bf16_avx512(lo));
            _mm256_storeu_si256((__m256i *)(y + j + 16), rounded_bf16_avx512(hi));
        }
    }
    run_bf16_avx512(x + j, y + j, u + j, n - j, t, s);
}
#endif
#endif
DEFINE_RUN(f64, double, ud_scale_f64, double, ud_u64)

/* A collapsed layout: axes of length > 1, merged where x and the mask both allow it. */
typedef struct {
    int ndim;
    ud_i64 shape[MAX_DIMS];
    ud_i64 xstride[MAX_DIMS]; /* bytes, any sign */
    ud_u64 mstride[MAX_DIMS]; /* mask elements; 0 on a broadcast axis */
} layout;

/* Collapse shape/strides; `broadcast` has bit d set for a broadcast axis d (d < 64) of the
 * array's own axes. Axis d of the buffers is the array's axis order[d] (order may be NULL: the
 * identity): the mask strides are those of the array's C order, whatever order the buffers walk,
 * or `given` (the array's own axis order; 0 on broadcast axes) for a block of a global mask. */
static void collapse(layout *L, int ndim, const Py_ssize_t *shape, const Py_ssize_t *strides,
                     ud_u64 broadcast, const int *order, const ud_u64 *given) {
    ud_u64 own[MAX_DIMS], mstride[MAX_DIMS];
    Py_ssize_t own_shape[MAX_DIMS];
    ud_u64 extent = 1;
    for (int d = 0; d < ndim; ++d) own_shape[order ? order[d] : d] = shape[d];
    for (int d = ndim - 1; d >= 0; --d) {
        int b = (broadcast >> d) & 1u;
        own[d] = b ? 0 : (given ? given[d] : extent);
        if (!b) extent *= (ud_u64)own_shape[d];
    }
    for (int d = 0; d < ndim; ++d) mstride[d] = own[order ? order[d] : d];
    L->ndim = 0;
    for (int d = 0; d < ndim; ++d) {
        if (shape[d] == 1) continue;
        int k = L->ndim;
        if (k > 0 && L->xstride[k - 1] == strides[d] * shape[d] &&
            L->mstride[k - 1] == mstride[d] * (ud_u64)shape[d]) {
            L->shape[k - 1] *= shape[d];
            L->xstride[k - 1] = strides[d];
            L->mstride[k - 1] = mstride[d];
        } else {
            L->shape[k] = shape[d];
            L->xstride[k] = strides[d];
            L->mstride[k] = mstride[d];
            L->ndim = k + 1;
        }
    }
    if (L->ndim == 0) { /* one element */
        L->ndim = 1;
        L->shape[0] = 1;
        L->xstride[0] = 0;
        L->mstride[0] = 1;
    }
}

typedef struct {
    int kind;
    const char *x;
    char *y;
    ud_u8 *mask; /* fused keep bytes (no broadcast axis), or NULL */
    ud_rng r;
    double scale;
    ud_u64 mask_offset;
} job;

static void run_tile(const job *J, const char *x, ud_i64 xs, ud_u64 o, ud_u64 m, const ud_u32 *u,
                     ud_u64 n) {
    (void)m;
    switch (J->kind) {
    case KIND_FLOAT16:
#if UD_HAVE_AVX512_BLOCKS && UD_HAVE_F16C
        if (simd_level >= SIMD_AVX512 && xs == (ud_i64)sizeof(ud_u16)) {
            run_f16_avx512((const ud_u16 *)x, (ud_u16 *)J->y + o, u, n, J->r.t, (float)J->scale);
            break;
        }
#endif
#if UD_HAVE_F16C
        if (have_f16c) {
            run_f16c(x, xs, (ud_u16 *)J->y + o, u, n, J->r.t, (float)J->scale);
            break;
        }
#endif
        run_f16(x, xs, (ud_u16 *)J->y + o, u, n, J->r.t, (float)J->scale);
        break;
    case KIND_BFLOAT16:
#if UD_HAVE_AVX512_BLOCKS && UD_HAVE_F16C
#if UD_HAVE_AVX512_BF16
        if (simd_level >= SIMD_AVX512_BF16 && xs == (ud_i64)sizeof(ud_u16)) {
            run_bf16_avx512bf16((const ud_u16 *)x, (ud_u16 *)J->y + o, u, n, J->r.t, (float)J->scale);
            break;
        }
#endif
        if (simd_level >= SIMD_AVX512 && xs == (ud_i64)sizeof(ud_u16)) {
            run_bf16_avx512((const ud_u16 *)x, (ud_u16 *)J->y + o, u, n, J->r.t, (float)J->scale);
            break;
        }
#endif
#if UD_HAVE_AVX2_BLOCKS
        if (simd_level >= SIMD_AVX2 && xs == (ud_i64)sizeof(ud_u16)) {
            run_bf16_avx2((const ud_u16 *)x, (ud_u16 *)J->y + o, u, n, J->r.t, (float)J->scale);
            break;
        }
#endif
        run_bf16(x, xs, (ud_u16 *)J->y + o, u, n, J->r.t, (float)J->scale);
        break;
    case KIND_FLOAT32:
#if UD_HAVE_AVX512_BLOCKS && UD_HAVE_F16C
        if (simd_level >= SIMD_AVX512 && xs == (ud_i64)sizeof(float)) {
            run_f32_avx512((const float *)x, (float *)J->y + o, u, n, J->r.t, (float)J->scale);
            break;
        }
#endif
#if UD_HAVE_AVX2_BLOCKS
        if (simd_level >= SIMD_AVX2 && xs == (ud_i64)sizeof(float)) {
            run_f32_avx2((const float *)x, (float *)J->y + o, u, n, J->r.t, (float)J->scale);
            break;
        }
#endif
        run_f32(x, xs, (float *)J->y + o, u, n, J->r.t, (float)J->scale);
        break;
    default:
        run_f64(x, xs, (double *)J->y + o, u, n, J->r.t, J->scale);
        break;
    }
    if (J->mask)
        for (ud_u64 j = 0; j < n; ++j) J->mask[o + j] = (ud_u8)ud_keep(u[j], J->r.t);
}

static void fill(const job *J, const char *x, ud_i64 xs, ud_u64 o, ud_u64 n, int keep) {
    switch (J->kind) {
    case KIND_FLOAT16:
        fill_f16(x, xs, (ud_u16 *)J->y + o, n, keep, (float)J->scale);
        break;
    case KIND_BFLOAT16:
        fill_bf16(x, xs, (ud_u16 *)J->y + o, n, keep, (float)J->scale);
        break;
    case KIND_FLOAT32:
        fill_f32(x, xs, (float *)J->y + o, n, keep, (float)J->scale);
        break;
    default:
        fill_f64(x, xs, (double *)J->y + o, n, keep, J->scale);
        break;
    }
}

/* Logical C-order elements start .. stop-1 of the output. */
static void compute(const job *J, const layout *L, ud_u64 start, ud_u64 stop) {
    ud_u32 words[4 * TILE_BLOCKS + 8];
    ud_i64 c[MAX_DIMS];
    const int last = L->ndim - 1;
    const ud_i64 inner = L->shape[last], xs = L->xstride[last];
    const ud_u64 ms = L->mstride[last];
    ud_u64 rest = start;
    ud_i64 xo = 0;
    ud_u64 mo = 0;
    for (int d = last; d >= 0; --d) {
        c[d] = (ud_i64)(rest % (ud_u64)L->shape[d]);
        rest /= (ud_u64)L->shape[d];
        xo += c[d] * L->xstride[d];
        mo += (ud_u64)c[d] * L->mstride[d];
    }
    ud_u64 o = start;
    ud_u64 cached = ~0ull;
    ud_words w = {{0, 0, 0, 0}};
    while (o < stop) {
        ud_u64 n = (ud_u64)(inner - c[last]);
        if (n > stop - o) n = stop - o;
        const char *x = J->x + xo;
        if (ms == 0) { /* every element of this run shares one mask word */
            ud_u64 mi = mo + J->mask_offset;
            if ((mi >> 2) != cached) {
                cached = mi >> 2;
                w = ud_philox_block(cached, J->r);
            }
            fill(J, x, xs, o, n, ud_keep(ud_word(w, (ud_u32)(mi & 3u)), J->r.t));
        } else if (ms != 1) { /* the buffers walk another axis than the mask's last */
            ud_u64 done = 0;
            while (done < n) {
                ud_u64 take = n - done;
                if (take > 4 * TILE_BLOCKS) take = 4 * TILE_BLOCKS;
                gather_words(words, mo + done * ms + J->mask_offset, ms, take, J->r);
                run_tile(J, x + (ud_i64)done * xs, xs, o + done, 0, words, take);
                done += take;
            }
        } else { /* ms == 1: consecutive mask indices */
            ud_u64 done = 0;
            while (done < n) {
                ud_u64 take = n - done;
                if (take > 4 * TILE_BLOCKS) take = 4 * TILE_BLOCKS;
                fill_words(words, mo + done + J->mask_offset, take, J->r);
                run_tile(J, x + (ud_i64)done * xs, xs, o + done, mo + done, words, take);
                done += take;
            }
        }
        o += n;
        /* step to the start of the next run */
        xo += (ud_i64)n * xs;
        mo += n * ms;
        c[last] += (ud_i64)n;
        for (int d = last; d > 0 && c[d] == L->shape[d]; --d) {
            xo += L->xstride[d - 1] - L->shape[d] * L->xstride[d];
            mo += L->mstride[d - 1] - (ud_u64)L->shape[d] * L->mstride[d];
            c[d] = 0;
            c[d - 1] += 1;
        }
    }
}

/* Keep bytes of mask indices start .. stop-1 (plus mask_offset) into mask[start..stop-1]. */
UD_CLONES static void keep_bytes(ud_u8 *restrict mask, ud_u64 start, ud_u64 stop, ud_u64 offset,
                                 ud_rng r) {
    ud_u32 words[4 * TILE_BLOCKS + 8];
    ud_u64 m = start;
    while (m < stop) {
        ud_u64 take = stop - m;
        if (take > 4 * TILE_BLOCKS) take = 4 * TILE_BLOCKS;
        fill_words(words, m + offset, take, r);
        for (ud_u64 j = 0; j < take; ++j) mask[m + j] = (ud_u8)ud_keep(words[j], r.t);
        m += take;
    }
}

/* Keep bytes of a block's mask (C-contiguous, ndim axes of sizes shape) whose element at index j
 * has global mask index offset + sum_d j[d] * gstride[d]: runs along the last axis (after merging
 * the axes that continue each other in the global mask) are consecutive global indices. */
static void keep_block_bytes(ud_u8 *mask, int ndim, const ud_u64 *shape, const ud_u64 *gstride,
                             ud_u64 offset, ud_rng r) {
    ud_u64 size[MAX_DIMS], stride[MAX_DIMS], c[MAX_DIMS], total = 1;
    int k = 0;
    for (int d = 0; d < ndim; ++d) {
        total *= shape[d];
        if (shape[d] == 1) continue;
        if (k > 0 && stride[k - 1] == gstride[d] * shape[d]) {
            size[k - 1] *= shape[d];
            stride[k - 1] = gstride[d];
        } else {
            size[k] = shape[d];
            stride[k] = gstride[d];
            ++k;
        }
    }
    if (total == 0) return;
    if (k == 0) { /* one element */
        mask[0] = (ud_u8)ud_keep(ud_mask_word(offset, r), r.t);
        return;
    }
    const ud_u64 inner = size[k - 1], ms = stride[k - 1];
    for (int d = 0; d < k; ++d) c[d] = 0;
    for (ud_u64 o = 0; o < total; o += inner) {
        ud_u64 g = offset;
        for (int d = 0; d < k - 1; ++d) g += c[d] * stride[d];
        if (ms == 1) {
            keep_bytes(mask + o, 0, inner, g, r);
        } else {
            for (ud_u64 j = 0; j < inner; ++j) mask[o + j] = (ud_u8)ud_keep(ud_mask_word(g + j * ms, r), r.t);
        }
        for (int d = k - 2; d >= 0; --d) { /* the next run */
            if (++c[d] < size[d]) break;
            c[d] = 0;
        }
    }
}

/* ---------------------------------------------------------------------------------------------
 * Python entry points
 * --------------------------------------------------------------------------------------------- */

static int rng_of(ud_rng *r, unsigned long long seed, unsigned long long stream,
                  unsigned long long threshold) {
    if (threshold > 0xFFFFFFFFull) {
        PyErr_Format(PyExc_ValueError, "threshold must be below 2^32 (p < 1), got %llu", threshold);
        return -1;
    }
    r->k0 = (ud_u32)seed;
    r->k1 = (ud_u32)(seed >> 32);
    r->s0 = (ud_u32)stream;
    r->s1 = (ud_u32)(stream >> 32);
    r->t = (ud_u32)threshold;
    return 0;
}

/* A tuple of ndim non-negative ints (below 2^64) into out; -1 (no exception set) otherwise. */
static int read_u64_tuple(PyObject *tuple, int ndim, ud_u64 *out) {
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) != ndim) return -1;
    for (int d = 0; d < ndim; ++d) {
        PyObject *item = PyTuple_GET_ITEM(tuple, d);
        unsigned long long v = PyLong_Check(item) ? PyLong_AsUnsignedLongLong(item) : (unsigned long long)-1;
        if (v == (unsigned long long)-1 && (!PyLong_Check(item) || PyErr_Occurred())) {
            PyErr_Clear();
            return -1;
        }
        out[d] = v;
    }
    return 0;
}

/* order (a tuple of ndim ints) into out; -1 unless it is a permutation of 0..ndim-1. */
static int read_order(PyObject *tuple, int ndim, int *out) {
    int seen[MAX_DIMS] = {0};
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) != ndim) return -1;
    for (int d = 0; d < ndim; ++d) {
        long v = PyLong_AsLong(PyTuple_GET_ITEM(tuple, d));
        if (v < 0 || v >= ndim || seen[v]) {
            PyErr_Clear();
            return -1;
        }
        seen[v] = 1;
        out[d] = (int)v;
    }
    return 0;
}

static const char dropout_doc[] =
    "dropout(x, y, mask, kind, broadcast, seed, stream, threshold, scale, start, stop, mask_offset=0)\n"
    "\n"
    "Write mask stream v1 dropout of x into y for the logical C-order elements start..stop-1.\n"
    "x: any buffer (any strides); y: a C-contiguous writable buffer of x's shape and itemsize;\n"
    "mask: None or a C-contiguous writable buffer of x.size bytes (only when no axis is broadcast);\n"
    "kind: 0 float16, 1 bfloat16 (uint16 bits), 2 float32, 3 float64; broadcast: bit d set for a\n"
    "broadcast axis d; threshold: floor(p * 2^32) < 2^32; scale: 1/(1-p) in float64 (rounded to\n"
    "float32 for 16-bit and float32 kinds); mask_offset is added to every mask index (tests);\n"
    "order: None, or the array's axis of each axis of x and y when they are its transposed views\n"
    "(start/stop then count in the buffers' C order, and no fused mask);\n"
    "mask_strides: None, or the mask stride of each of the array's own axes (in the array's axis\n"
    "order, like order; ignored on broadcast axes) for a block of a global mask: its global mask's\n"
    "strides, with mask_offset the global index of the block's first mask element.\n"
    "The GIL is released while computing.";

static PyObject *py_dropout(PyObject *self, PyObject *args) {
    PyObject *xo, *yo, *mo, *ordero = Py_None, *stridero = Py_None;
    int kind, order[MAX_DIMS];
    ud_u64 given[MAX_DIMS];
    unsigned long long broadcast, seed, stream, threshold, start, stop, offset = 0;
    double scale;
    (void)self;
    if (!PyArg_ParseTuple(args, "OOOiKKKKdKK|KOO:dropout", &xo, &yo, &mo, &kind, &broadcast, &seed,
                          &stream, &threshold, &scale, &start, &stop, &offset, &ordero, &stridero))
        return NULL;
    if (kind < KIND_FLOAT16 || kind > KIND_FLOAT64) {
        PyErr_Format(PyExc_ValueError, "kind must be 0..3, got %d", kind);
        return NULL;
    }
    job J;
    if (rng_of(&J.r, seed, stream, threshold) < 0) return NULL;
    Py_buffer xb, yb, mb;
    if (PyObject_GetBuffer(xo, &xb, PyBUF_STRIDES) < 0) return NULL;
    if (PyObject_GetBuffer(yo, &yb, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&xb);
        return NULL;
    }
    int has_mask = mo != Py_None;
    if (has_mask && PyObject_GetBuffer(mo, &mb, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&xb);
        PyBuffer_Release(&yb);
        return NULL;
    }
    static const Py_ssize_t sizes[4] = {2, 2, 4, 8};
    Py_ssize_t count = xb.itemsize ? xb.len / xb.itemsize : 0;
    const char *bad = NULL;
    if (xb.itemsize != sizes[kind] || yb.itemsize != sizes[kind]) bad = "x and y must have the kind's itemsize";
    else if (yb.len != xb.len) bad = "y must have as many elements as x";
    else if (xb.ndim > MAX_DIMS) bad = "x has more than 64 dimensions";
    else if (start > stop || stop > (unsigned long long)count) bad = "need start <= stop <= x.size";
    else if (has_mask && (mb.len != count || broadcast || ordero != Py_None))
        bad = "a fused mask needs x.size bytes, no broadcast and no order";
    else if (ordero != Py_None && read_order(ordero, xb.ndim, order) < 0) bad = "order must be a permutation of x's axes";
    else if (stridero != Py_None && read_u64_tuple(stridero, xb.ndim, given) < 0)
        bad = "mask_strides must be a tuple of one non-negative int per axis of x";
    if (bad) {
        PyErr_SetString(PyExc_ValueError, bad);
    } else if (start < stop) {
        layout L;
        Py_ssize_t one = 1, zero = 0, c_strides[MAX_DIMS];
        const Py_ssize_t *x_strides = xb.strides;
        if (x_strides == NULL) { /* an exporter may leave strides out (ctypes): C order, then */
            Py_ssize_t step = xb.itemsize;
            for (int d = xb.ndim - 1; d >= 0; --d) {
                c_strides[d] = step;
                step *= xb.shape[d];
            }
            x_strides = c_strides;
        }
        collapse(&L, xb.ndim, xb.ndim ? xb.shape : &one, xb.ndim ? x_strides : &zero, broadcast,
                 ordero == Py_None ? NULL : order, stridero == Py_None ? NULL : given);
        J.kind = kind;
        J.x = (const char *)xb.buf;
        J.y = (char *)yb.buf;
        J.mask = has_mask ? (ud_u8 *)mb.buf : NULL;
        J.scale = scale;
        J.mask_offset = offset;
        if (stop - start < GIL_FREE_FROM) {
            compute(&J, &L, start, stop);
        } else {
            Py_BEGIN_ALLOW_THREADS
            compute(&J, &L, start, stop);
            Py_END_ALLOW_THREADS
        }
    }
    if (has_mask) PyBuffer_Release(&mb);
    PyBuffer_Release(&yb);
    PyBuffer_Release(&xb);
    if (bad) return NULL;
    Py_RETURN_NONE;
}

static const char dropout_at_doc[] =
    "dropout_at(kind, x_address, x_step, y_address, count, seed, stream, threshold, scale)\n"
    "\n"
    "dropout(), for callers that hold raw memory rather than buffer objects (unidrop-torch's\n"
    "small tensors: viewing a tensor as a NumPy array costs more than the kernel on it): the count\n"
    "elements at x_address, x_address + x_step, ... (x_step in bytes, any sign, 0 for one value\n"
    "repeated) are mask elements 0..count-1, written to the contiguous y_address. The caller\n"
    "promises both regions are valid for the call and do not overlap. The GIL is released while\n"
    "computing large counts.";

static PyObject *py_dropout_at(PyObject *self, PyObject *args) {
    unsigned long long x_address, y_address, count, seed, stream, threshold;
    long long x_step;
    int kind;
    double scale;
    (void)self;
    if (!PyArg_ParseTuple(args, "iKLKKKKKd:dropout_at", &kind, &x_address, &x_step, &y_address, &count,
                          &seed, &stream, &threshold, &scale))
        return NULL;
    if (kind < KIND_FLOAT16 || kind > KIND_FLOAT64) {
        PyErr_Format(PyExc_ValueError, "kind must be 0..3, got %d", kind);
        return NULL;
    }
    if (count > (unsigned long long)PY_SSIZE_T_MAX || (count && (!x_address || !y_address))) {
        PyErr_SetString(PyExc_ValueError, "need count < 2^63 and non-null addresses");
        return NULL;
    }
    job J;
    if (rng_of(&J.r, seed, stream, threshold) < 0) return NULL;
    if (count == 0) Py_RETURN_NONE;
    layout L;
    Py_ssize_t n = (Py_ssize_t)count, step = (Py_ssize_t)x_step;
    collapse(&L, 1, &n, &step, 0, NULL, NULL);
    J.kind = kind;
    J.x = (const char *)(uintptr_t)x_address;
    J.y = (char *)(uintptr_t)y_address;
    J.mask = NULL;
    J.scale = scale;
    J.mask_offset = 0;
    if (count < GIL_FREE_FROM) {
        compute(&J, &L, 0, count);
    } else {
        Py_BEGIN_ALLOW_THREADS
        compute(&J, &L, 0, count);
        Py_END_ALLOW_THREADS
    }
    Py_RETURN_NONE;
}

static const char keep_mask_doc[] =
    "keep_mask(mask, seed, stream, threshold, start, stop, mask_offset=0)\n"
    "\n"
    "Write the keep bytes of mask indices start..stop-1 (plus mask_offset) into the C-contiguous\n"
    "writable buffer mask at the same positions. The GIL is released while computing.";

static PyObject *py_keep_mask(PyObject *self, PyObject *args) {
    PyObject *mo;
    unsigned long long seed, stream, threshold, start, stop, offset = 0;
    (void)self;
    if (!PyArg_ParseTuple(args, "OKKKKK|K:keep_mask", &mo, &seed, &stream, &threshold, &start, &stop,
                          &offset))
        return NULL;
    ud_rng r;
    if (rng_of(&r, seed, stream, threshold) < 0) return NULL;
    Py_buffer mb;
    if (PyObject_GetBuffer(mo, &mb, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) return NULL;
    if (mb.itemsize != 1 || start > stop || stop > (unsigned long long)mb.len) {
        PyBuffer_Release(&mb);
        PyErr_SetString(PyExc_ValueError, "keep_mask needs a 1-byte buffer and start <= stop <= its size");
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    keep_bytes((ud_u8 *)mb.buf, start, stop, offset, r);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&mb);
    Py_RETURN_NONE;
}

static const char keep_block_doc[] =
    "keep_block(mask, seed, stream, threshold, mask_strides, mask_offset)\n"
    "\n"
    "Write the keep bytes of a block of a global mask into the C-contiguous writable bool buffer\n"
    "mask (the block's mask shape): its element at index j has global mask index\n"
    "mask_offset + sum_d j[d] * mask_strides[d] (the global mask's strides; one per axis of mask).\n"
    "The GIL is released while computing.";

static PyObject *py_keep_block(PyObject *self, PyObject *args) {
    PyObject *mo, *stridero;
    unsigned long long seed, stream, threshold, offset;
    ud_u64 shape[MAX_DIMS], gstride[MAX_DIMS];
    (void)self;
    if (!PyArg_ParseTuple(args, "OKKKOK:keep_block", &mo, &seed, &stream, &threshold, &stridero, &offset))
        return NULL;
    ud_rng r;
    if (rng_of(&r, seed, stream, threshold) < 0) return NULL;
    Py_buffer mb;
    if (PyObject_GetBuffer(mo, &mb, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE | PyBUF_ND) < 0) return NULL;
    const char *bad = NULL;
    if (mb.itemsize != 1) bad = "keep_block needs a 1-byte buffer";
    else if (mb.ndim > MAX_DIMS) bad = "mask has more than 64 dimensions";
    else if (read_u64_tuple(stridero, mb.ndim, gstride) < 0)
        bad = "mask_strides must be a tuple of one non-negative int per axis of mask";
    if (bad) {
        PyBuffer_Release(&mb);
        PyErr_SetString(PyExc_ValueError, bad);
        return NULL;
    }
    for (int d = 0; d < mb.ndim; ++d) shape[d] = (ud_u64)mb.shape[d];
    Py_BEGIN_ALLOW_THREADS
    keep_block_bytes((ud_u8 *)mb.buf, mb.ndim, shape, gstride, offset, r);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&mb);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"dropout", py_dropout, METH_VARARGS, dropout_doc},
    {"dropout_at", py_dropout_at, METH_VARARGS, dropout_at_doc},
    {"keep_mask", py_keep_mask, METH_VARARGS, keep_mask_doc},
    {"keep_block", py_keep_block, METH_VARARGS, keep_block_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernel",
    "Mask stream v1 dropout on the CPU, compiled from the core's unidrop/mask_stream_v1.h.", -1,
    methods, NULL, NULL, NULL, NULL,
};

static int add_c_api(PyObject *m); /* the C entry point for other extensions: at the end */

static int same_name(const char *given, const char *name) {
    for (; *given && *name; ++given, ++name)
        if ((*given >= 'A' && *given <= 'Z' ? *given - 'A' + 'a' : *given) != *name) return 0;
    return *given == *name;
}

/* The SIMD level UNIDROP_NUMPY_SIMD allows: "avx512bf16" or unset (whatever the CPU has),
 * "avx512", "avx2" or "none" (any case); -1 with ValueError set for any other value. */
static int simd_allowed(void) {
    const char *setting = getenv("UNIDROP_NUMPY_SIMD");
    if (setting == NULL || *setting == '\0') return SIMD_AVX512_BF16;
    for (int level = SIMD_NONE; level <= SIMD_AVX512_BF16; ++level)
        if (same_name(setting, SIMD_NAMES[level])) return level;
    PyObject *given = PyUnicode_DecodeFSDefault(setting);
    if (given != NULL) {
        PyErr_Format(PyExc_ValueError,
                     "UNIDROP_NUMPY_SIMD must be one of avx512bf16, avx512, avx2, none (or unset), got %R", given);
        Py_DECREF(given);
    }
    return -1;
}

PyMODINIT_FUNC PyInit__kernel(void) {
    const int allowed = simd_allowed();
    int level = SIMD_NONE;
    if (allowed < 0) return NULL;
#if UD_HAVE_F16C || UD_HAVE_AVX2_BLOCKS
    __builtin_cpu_init();
    if (allowed >= SIMD_AVX2 && __builtin_cpu_supports("avx2")) level = SIMD_AVX2;
#endif
#if UD_HAVE_AVX512_BLOCKS
    if (allowed >= SIMD_AVX512 && level == SIMD_AVX2 && __builtin_cpu_supports("avx512f")) level = SIMD_AVX512;
#endif
#if UD_HAVE_AVX512_BF16
    if (allowed >= SIMD_AVX512_BF16 && level == SIMD_AVX512 && __builtin_cpu_supports("avx512bf16") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
        level = SIMD_AVX512_BF16;
#endif
#if UD_HAVE_F16C
    have_f16c = level >= SIMD_AVX2 && __builtin_cpu_supports("f16c");
#endif
    simd_level = level;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddStringConstant(m, "BUILD", UD_CLONES_NAME) < 0 ||
        PyModule_AddIntConstant(m, "TILE_ELEMENTS", 4 * TILE_BLOCKS) < 0 ||
        PyModule_AddStringConstant(m, "SIMD", SIMD_NAMES[level]) < 0
#if UD_HAVE_F16C
        || PyModule_AddIntConstant(m, "F16C", have_f16c) < 0
#endif
        || add_c_api(m) < 0
    ) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

/* ---------------------------------------------------------------------------------------------
 * C entry point for other extensions (unidrop-jax's XLA FFI handler): the capsule _C_API holds a
 * ud_cpu_kernel_api (unidrop/cpu_kernel_api.h) whose dropout runs compute() above, so that no
 * second copy of these loops is compiled anywhere.
 * --------------------------------------------------------------------------------------------- */
#include "unidrop/cpu_kernel_api.h"

static int c_api_dropout(int kind, const void *x, void *y, int ndim, const int64_t *shape,
                         uint64_t broadcast, uint64_t seed, uint64_t stream, uint32_t threshold,
                         double scale, uint64_t start, uint64_t stop) {
    static const Py_ssize_t sizes[4] = {2, 2, 4, 8};
    Py_ssize_t dims[MAX_DIMS], strides[MAX_DIMS], one = 1, zero = 0;
    ud_u64 count = 1;
    if (kind < KIND_FLOAT16 || kind > KIND_FLOAT64 || ndim < 0 || ndim > MAX_DIMS) return -1;
    for (int d = ndim - 1; d >= 0; --d) {
        /* no buffer has more than PY_SSIZE_T_MAX bytes: a larger shape is refused, never wrapped */
        if (shape[d] < 0 || count > (ud_u64)PY_SSIZE_T_MAX / (ud_u64)sizes[kind]) return -1;
        dims[d] = (Py_ssize_t)shape[d];
        strides[d] = (Py_ssize_t)count * sizes[kind];
        if (shape[d] != 0 && count > UINT64_MAX / (ud_u64)shape[d]) return -1;
        count *= (ud_u64)shape[d];
    }
    if (count > (ud_u64)PY_SSIZE_T_MAX / (ud_u64)sizes[kind]) return -1;
    if (start > stop || stop > count) return -1;
    if (start == stop) return 0;
    job J;
    layout L;
    J.r.k0 = (ud_u32)seed;
    J.r.k1 = (ud_u32)(seed >> 32);
    J.r.s0 = (ud_u32)stream;
    J.r.s1 = (ud_u32)(stream >> 32);
    J.r.t = threshold;
    J.kind = kind;
    J.x = (const char *)x;
    J.y = (char *)y;
    J.mask = NULL;
    J.scale = scale;
    J.mask_offset = 0;
    collapse(&L, ndim, ndim ? dims : &one, ndim ? strides : &zero, broadcast, NULL, NULL);
    compute(&J, &L, start, stop);
    return 0;
}

static const ud_cpu_kernel_api c_api = {UD_CPU_KERNEL_API_VERSION, c_api_dropout};

static int add_c_api(PyObject *m) {
    PyObject *capsule = PyCapsule_New((void *)&c_api, UD_CPU_KERNEL_CAPSULE, NULL);
    if (capsule == NULL) return -1;
    if (PyModule_AddObject(m, "_C_API", capsule) < 0) {
        Py_DECREF(capsule);
        return -1;
    }
    return 0;
}
