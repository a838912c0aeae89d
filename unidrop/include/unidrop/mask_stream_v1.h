/* unidrop mask stream v1: the one C source of Philox4x32-10, the keep decision, the scale and
 * select, and the 16-bit rounding rules (docs/spec.md). Shipped with the core package;
 * unidrop.get_include() returns the folder to put on the include path.
 *
 * The same text compiles as C99 or C++ for the host (the NumPy backend's compiled kernel, the
 * CuPy backend's host tests) and as CUDA (the CuPy backend's NVRTC kernels). What differs between
 * those builds is confined to the primitives at the top: 32x32->64 multiply-high, bit casts, the
 * IEEE multiply, and float<->float16 conversion (hardware cvt.rn on sm_53+ GPUs, an integer
 * round-to-nearest-even routine elsewhere). Everything that decides which mask word an element
 * uses and what it outputs is shared.
 *
 * Promises (mask stream v1): element i of the mask shape M uses word (i & 3) of Philox4x32-10
 * with counter (b mod 2^32, b >> 32, stream mod 2^32, stream >> 32), b = i >> 2, and key
 * (seed mod 2^32, seed >> 32); it is dropped iff that word < t = floor(p * 2^32); dropped -> +0
 * exactly (a select), kept -> x * s in the compute dtype (float32 for 16-bit storage), rounded
 * to nearest even back to a 16-bit storage dtype.
 *
 * Host builds must not contract multiplies into fused multiply-adds (-ffp-contract=off).
 */

#ifndef UNIDROP_MASK_STREAM_V1_H
#define UNIDROP_MASK_STREAM_V1_H

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define UD_CUDA 1
#define UD_HD __device__ __forceinline__
#define UD_UNROLL _Pragma("unroll")
#else
#define UD_CUDA 0
#define UD_HD inline
#define UD_UNROLL
#include <string.h>
#endif

#define UD_FN static UD_HD

typedef unsigned char ud_u8;
typedef unsigned short ud_u16;
typedef unsigned int ud_u32;
typedef unsigned long long ud_u64;
typedef long long ud_i64;

/* Philox4x32-10 constants (Random123). */
#define UD_PHILOX_M0 0xD2511F53u
#define UD_PHILOX_M1 0xCD9E8D57u
#define UD_PHILOX_W0 0x9E3779B9u
#define UD_PHILOX_W1 0xBB67AE85u
#define UD_PHILOX_ROUNDS 10

/* ------------------------------------------------------------------------------------------
 * Primitives (the only code that differs between the GPU and host builds)
 * ------------------------------------------------------------------------------------------ */

UD_FN ud_u32 ud_mulhi(ud_u32 a, ud_u32 b) {
#if UD_CUDA
    return __umulhi(a, b);
#else
    return (ud_u32)(((ud_u64)a * (ud_u64)b) >> 32);
#endif
}

UD_FN ud_u32 ud_f32_bits(float v) {
#if UD_CUDA
    return __float_as_uint(v);
#else
    ud_u32 u;
    memcpy(&u, &v, sizeof u);
    return u;
#endif
}

UD_FN float ud_bits_f32(ud_u32 u) {
#if UD_CUDA
    return __uint_as_float(u);
#else
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
#endif
}

/* IEEE products, never contracted into a fused multiply-add. On the GPU the float product is
 * inline PTX without .ftz: CuPy compiles every kernel with -ftz=true, which would turn
 * __fmul_rn into mul.rn.ftz.f32 and flush subnormal inputs and results (float32 and bfloat16
 * have subnormals the spec keeps) to zero. */
UD_FN float ud_mul_f32(float a, float b) {
#if UD_CUDA
    float r;
    asm("mul.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
#else
    return a * b; /* host builds use -ffp-contract=off */
#endif
}

UD_FN double ud_mul_f64(double a, double b) {
#if UD_CUDA
    return __dmul_rn(a, b);
#else
    return a * b;
#endif
}

/* ------------------------------------------------------------------------------------------
 * 16-bit conversions. Widening is exact; narrowing rounds to nearest, ties to even.
 * ------------------------------------------------------------------------------------------ */

/* float16 bits -> float (exact), integer version. */
UD_FN float ud_f16_to_f32_soft(ud_u16 h) {
    ud_u32 sign = (ud_u32)(h & 0x8000u) << 16;
    ud_u32 exponent = (h >> 10) & 0x1Fu;
    ud_u32 mantissa = h & 0x3FFu;
    if (exponent == 0x1Fu) return ud_bits_f32(sign | 0x7F800000u | (mantissa << 13)); /* inf, NaN */
    if (exponent != 0) return ud_bits_f32(sign | ((exponent + 112u) << 23) | (mantissa << 13));
    /* zero or subnormal: mantissa * 2^-24, exact in float */
    return ud_bits_f32(sign | ud_f32_bits((float)mantissa * 5.9604644775390625e-8f));
}

/* float -> float16 bits, round to nearest even; overflow -> inf; NaN stays NaN: quiet, the top 9
 * payload bits kept (as x86's F16C and ARM's conversions do, so every SIMD level agrees). */
UD_FN ud_u16 ud_f32_to_f16_soft(float v) {
    ud_u32 f = ud_f32_bits(v);
    ud_u32 sign = (f >> 16) & 0x8000u;
    ud_u32 a = f & 0x7FFFFFFFu;
    if (a > 0x7F800000u) return (ud_u16)(sign | 0x7E00u | ((a >> 13) & 0x3FFu));
    if (a == 0x7F800000u) return (ud_u16)(sign | 0x7C00u);
    if (a >= 0x477FF000u) return (ud_u16)(sign | 0x7C00u); /* >= 65520 rounds to inf */
    if (a >= 0x38800000u) {                                  /* normal float16 (>= 2^-14) */
        ud_u32 odd = (a >> 13) & 1u;
        return (ud_u16)(sign | ((a - 0x38000000u + 0xFFFu + odd) >> 13));
    }
    if (a <= 0x33000000u) return (ud_u16)sign; /* <= 2^-25: rounds to zero (2^-25 is a tie to 0) */
    {
        /* subnormal float16: round (1.m * 2^(e-127)) / 2^-24 to an integer */
        ud_u32 e = a >> 23;
        ud_u32 m = (a & 0x7FFFFFu) | 0x800000u;
        ud_u32 shift = 126u - e; /* 14 .. 24 */
        ud_u32 q = m >> shift;
        ud_u32 rest = m & ((1u << shift) - 1u);
        ud_u32 half = 1u << (shift - 1u);
        q += (rest > half || (rest == half && (q & 1u))) ? 1u : 0u;
        return (ud_u16)(sign | q); /* q may reach 0x400: the smallest normal, correctly encoded */
    }
}

/* The bfloat16 rounding of float bits F: round to nearest even, a finite value that overflows
 * carries into the exponent (inf), a NaN stays NaN (quiet: bit 6 set, the rest truncated). The
 * result's low 16 bits are the bfloat16; the high ones are 0. F is a ud_u32 variable or one of a
 * GCC/clang vector type of 32-bit unsigned lanes: the rule is arithmetic alone (no branch, and no
 * comparison, whose value differs between scalars and vector lanes), so that host loops over it
 * vectorize and one rule serves every lane width. UD_BF16_NAN_MASK_(F) is all ones for a NaN, else
 * 0: |F| + 0x7FFFFF reaches 2^31 exactly when |F| > 0x7F800000 (and never wraps). */
#define UD_BF16_NAN_MASK_(F) (0u - ((((F) & 0x7FFFFFFFu) + 0x007FFFFFu) >> 31))
/* The same rule for F known not to be a NaN (finite or infinite): the SIMD loops take it for a
 * group of lanes holding no NaN, and UD_BF16_ROUND_BITS otherwise. */
#define UD_BF16_ROUND_NOT_NAN_BITS(F) (((F) + 0x7FFFu + (((F) >> 16) & 1u)) >> 16)
#define UD_BF16_ROUND_BITS(F) \
    ((((F) + ((0x7FFFu + (((F) >> 16) & 1u)) & ~UD_BF16_NAN_MASK_(F))) >> 16) | (0x40u & UD_BF16_NAN_MASK_(F)))

/* float -> bfloat16 bits, round to nearest even; NaN stays NaN (quiet). */
UD_FN ud_u16 ud_f32_to_bf16(float v) {
    ud_u32 f = ud_f32_bits(v);
    return (ud_u16)UD_BF16_ROUND_BITS(f);
}

UD_FN float ud_bf16_to_f32(ud_u16 h) { return ud_bits_f32((ud_u32)h << 16); }

/* Host builds may define UD_HOST_F16_TO_F32 / UD_HOST_F32_TO_F16 to a hardware conversion that
 * gives the same bits (F16C's vcvtph2ps / vcvtps2ph with round-to-nearest-even). */
UD_FN float ud_f16_to_f32(ud_u16 h) {
#if UD_CUDA && !defined(UD_SOFT_HALF) && __CUDA_ARCH__ >= 530 /* cvt to and from f16: sm_53+ */
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
#elif !UD_CUDA && defined(UD_HOST_F16_TO_F32)
    return UD_HOST_F16_TO_F32(h);
#else
    return ud_f16_to_f32_soft(h);
#endif
}

UD_FN ud_u16 ud_f32_to_f16(float v) {
#if UD_CUDA && !defined(UD_SOFT_HALF) && __CUDA_ARCH__ >= 530 /* cvt to and from f16: sm_53+ */
    ud_u16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));
    return h;
#elif !UD_CUDA && defined(UD_HOST_F32_TO_F16)
    return UD_HOST_F32_TO_F16(v);
#else
    return ud_f32_to_f16_soft(v);
#endif
}

/* ------------------------------------------------------------------------------------------
 * Kept values: x * s in the compute dtype, rounded back to 16-bit storage. The select (a
 * dropped element is +0, whatever x is) is the caller's: `keep ? ud_scale_...(x, s) : 0`.
 * ------------------------------------------------------------------------------------------ */

UD_FN ud_u16 ud_scale_f16(ud_u16 x, float s) { return ud_f32_to_f16(ud_mul_f32(ud_f16_to_f32(x), s)); }
UD_FN ud_u16 ud_scale_bf16(ud_u16 x, float s) { return ud_f32_to_bf16(ud_mul_f32(ud_bf16_to_f32(x), s)); }
UD_FN float ud_scale_f32(float x, float s) { return ud_mul_f32(x, s); }
UD_FN double ud_scale_f64(double x, double s) { return ud_mul_f64(x, s); }

/* ------------------------------------------------------------------------------------------
 * Philox4x32-10 and the mask stream
 * ------------------------------------------------------------------------------------------ */

typedef struct ud_rng {
    ud_u32 k0, k1; /* seed mod 2^32, seed >> 32 */
    ud_u32 s0, s1; /* stream mod 2^32, stream >> 32 */
    ud_u32 t;      /* threshold floor(p * 2^32); p == 1 (t = 2^32) never reaches a kernel */
} ud_rng;

typedef struct ud_words {
    ud_u32 w[4];
} ud_words;

/* One Philox4x32 round, given the two products' halves: hi0:lo0 = M0 * c0, hi1:lo1 = M1 * c2.
 * The one definition of the round for both lane widths below. */
#define UD_PHILOX_MIX(c0, c1, c2, c3, k0, k1, hi0, lo0, hi1, lo1) \
    do {                                                          \
        c0 = (hi1) ^ (c1) ^ (k0);                                 \
        c1 = (lo1);                                               \
        c2 = (hi0) ^ (c3) ^ (k1);                                 \
        c3 = (lo0);                                               \
    } while (0)

/* The four words of Philox block b (mask elements 4b .. 4b+3). */
UD_FN ud_words ud_philox_block(ud_u64 b, ud_rng r) {
    ud_u32 c0 = (ud_u32)b, c1 = (ud_u32)(b >> 32), c2 = r.s0, c3 = r.s1;
    ud_u32 k0 = r.k0, k1 = r.k1;
    ud_words out;
    int round;
    UD_UNROLL
    for (round = 0; round < UD_PHILOX_ROUNDS; ++round) {
        ud_u32 hi0 = ud_mulhi(UD_PHILOX_M0, c0), lo0 = UD_PHILOX_M0 * c0;
        ud_u32 hi1 = ud_mulhi(UD_PHILOX_M1, c2), lo1 = UD_PHILOX_M1 * c2;
        UD_PHILOX_MIX(c0, c1, c2, c3, k0, k1, hi0, lo0, hi1, lo1);
        k0 += UD_PHILOX_W0;
        k1 += UD_PHILOX_W1;
    }
    out.w[0] = c0;
    out.w[1] = c1;
    out.w[2] = c2;
    out.w[3] = c3;
    return out;
}

#if !UD_CUDA
/* The same block with each word held in a 64-bit lane (high half zero), so that a loop over blocks
 * vectorizes with no repacking. Compilers may still build each lane's multiply by a constant from
 * shifts and adds (GCC 12 does); ud_whole_blocks_avx2 below writes the vpmuludq form directly. */
UD_FN ud_words ud_philox_block_wide(ud_u64 b, ud_rng r) {
    ud_u64 c0 = (ud_u32)b, c1 = b >> 32, c2 = r.s0, c3 = r.s1;
    ud_u32 k0 = r.k0, k1 = r.k1;
    ud_words out;
    int round;
    for (round = 0; round < UD_PHILOX_ROUNDS; ++round) {
        ud_u64 p0 = c0 * (ud_u64)UD_PHILOX_M0, p1 = c2 * (ud_u64)UD_PHILOX_M1;
        UD_PHILOX_MIX(c0, c1, c2, c3, (ud_u64)k0, (ud_u64)k1, p0 >> 32, p0 & 0xFFFFFFFFu, p1 >> 32,
                      p1 & 0xFFFFFFFFu);
        k0 += UD_PHILOX_W0;
        k1 += UD_PHILOX_W1;
    }
    out.w[0] = (ud_u32)c0;
    out.w[1] = (ud_u32)c1;
    out.w[2] = (ud_u32)c2;
    out.w[3] = (ud_u32)c3;
    return out;
}
#endif

/* Word `lane` (0..3) of a block, by selects: a dynamically indexed array would live in local
 * memory on the GPU. */
UD_FN ud_u32 ud_word(ud_words words, ud_u32 lane) {
    const ud_u32 low = (lane & 1u) ? words.w[1] : words.w[0];
    const ud_u32 high = (lane & 1u) ? words.w[3] : words.w[2];
    return (lane & 2u) ? high : low;
}

/* The keep decision of mask word u: kept iff u >= t (dropped with probability t / 2^32). */
UD_FN int ud_keep(ud_u32 u, ud_u32 t) { return u >= t; }

/* The mask word u_i of flat mask index i (any i, not only a multiple of 4): one Philox block. */
UD_FN ud_u32 ud_mask_word(ud_u64 i, ud_rng r) { return ud_word(ud_philox_block(i >> 2, r), (ud_u32)(i & 3u)); }

/* ------------------------------------------------------------------------------------------
 * Blocks of a global mask (docs/spec.md, "Blocks of a global mask"): a block at offset O of a
 * global mask of shape G uses, for its element at block-mask index j, the word of global flat
 * index sum_d (O[d] + j[d]) * stride_d(G). Along the block's trailing axes that index grows by
 * one per element, so a block's mask is made of runs of consecutive global indices, each
 * starting anywhere (not only at a multiple of 4): ud_fill_words makes the words of one run.
 * ------------------------------------------------------------------------------------------ */

/* The global flat mask index of the element at block-local C-order index `local` of a block mask
 * of `ndim` axes of sizes `shape`, whose global strides are `global_strides` (elements of the
 * global mask; any value on an axis of size 1) and whose first element has global index `start`
 * (sum_d O[d] * stride_d). */
UD_FN ud_u64 ud_block_index(ud_u64 local, int ndim, const ud_u64 *shape, const ud_u64 *global_strides,
                            ud_u64 start) {
    ud_u64 index = start;
    int d;
    for (d = ndim - 1; d >= 0; --d) {
        index += (local % shape[d]) * global_strides[d];
        local /= shape[d];
    }
    return index;
}

#if !UD_CUDA
/* The words of the whole Philox blocks b .. b+count-1, block k's four words to u[4k .. 4k+3]: a
 * loop the compiler may vectorize when the caller is built for SIMD. */
typedef void (*ud_blocks_fn)(ud_u32 *u, ud_u64 b, ud_u64 count, ud_rng r);

UD_FN void ud_whole_blocks(ud_u32 *u, ud_u64 b, ud_u64 count, ud_rng r) {
    ud_u64 k;
    for (k = 0; k < count; ++k) {
        ud_words w = ud_philox_block_wide(b + k, r);
        u[4 * k + 0] = w.w[0];
        u[4 * k + 1] = w.w[1];
        u[4 * k + 2] = w.w[2];
        u[4 * k + 3] = w.w[3];
    }
}

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
/* ud_whole_blocks with AVX2 intrinsics (call only where the CPU has AVX2): compilers synthesize a
 * SIMD multiply by a 64-bit constant from shifts and adds, so the rounds are written with
 * vpmuludq, the 32x32->64-bit multiply, directly. Each 64-bit lane holds one block's word in its
 * low half; the high halves carry garbage that no low half ever reads (vpmuludq reads low halves,
 * XOR is bitwise, and only products are shifted right). Eight blocks per step, two independent
 * sets of four, so that one set's multiplies overlap the other's. */
#define UD_HAVE_AVX2_BLOCKS 1
#include <immintrin.h>

#define UD_AVX2_ROUND(c0, c1, c2, c3, k0, k1, m0, m1)                                              \
    do {                                                                                           \
        __m256i p0_ = _mm256_mul_epu32(c0, m0), p1_ = _mm256_mul_epu32(c2, m1);                    \
        UD_PHILOX_MIX(c0, c1, c2, c3, k0, k1, _mm256_srli_epi64(p0_, 32), p0_,                     \
                      _mm256_srli_epi64(p1_, 32), p1_);                                            \
    } while (0)

/* Four blocks' words, one block per 64-bit lane of c0..c3, to u[0..15] in block order. */
__attribute__((target("avx2"))) static inline void ud_avx2_store(ud_u32 *u, __m256i c0, __m256i c1,
                                                                 __m256i c2, __m256i c3) {
    __m256i w01 = _mm256_blend_epi32(c0, _mm256_slli_epi64(c1, 32), 0xAA);
    __m256i w23 = _mm256_blend_epi32(c2, _mm256_slli_epi64(c3, 32), 0xAA);
    __m256i even = _mm256_unpacklo_epi64(w01, w23), odd = _mm256_unpackhi_epi64(w01, w23);
    _mm256_storeu_si256((__m256i *)u, _mm256_permute2x128_si256(even, odd, 0x20));
    _mm256_storeu_si256((__m256i *)(u + 8), _mm256_permute2x128_si256(even, odd, 0x31));
}

__attribute__((target("avx2"))) UD_FN void ud_whole_blocks_avx2(ud_u32 *u, ud_u64 b, ud_u64 count, ud_rng r) {
    const __m256i m0 = _mm256_set1_epi64x(UD_PHILOX_M0), m1 = _mm256_set1_epi64x(UD_PHILOX_M1);
    const __m256i s0 = _mm256_set1_epi64x(r.s0), s1 = _mm256_set1_epi64x(r.s1);
    const __m256i eight = _mm256_set1_epi64x(8);
    __m256i k0[UD_PHILOX_ROUNDS], k1[UD_PHILOX_ROUNDS];
    __m256i lanes = _mm256_add_epi64(_mm256_set1_epi64x((long long)b), _mm256_setr_epi64x(0, 1, 2, 3));
    ud_u32 key0 = r.k0, key1 = r.k1;
    ud_u64 k = 0;
    int round;
    for (round = 0; round < UD_PHILOX_ROUNDS; ++round) {
        k0[round] = _mm256_set1_epi64x(key0);
        k1[round] = _mm256_set1_epi64x(key1);
        key0 += UD_PHILOX_W0;
        key1 += UD_PHILOX_W1;
    }
    for (; k + 8 <= count; k += 8) {
        __m256i a0 = lanes, a1 = _mm256_srli_epi64(lanes, 32), a2 = s0, a3 = s1;
        __m256i next = _mm256_add_epi64(lanes, _mm256_set1_epi64x(4));
        __m256i b0 = next, b1 = _mm256_srli_epi64(next, 32), b2 = s0, b3 = s1;
        for (round = 0; round < UD_PHILOX_ROUNDS; ++round) {
            UD_AVX2_ROUND(a0, a1, a2, a3, k0[round], k1[round], m0, m1);
            UD_AVX2_ROUND(b0, b1, b2, b3, k0[round], k1[round], m0, m1);
        }
        ud_avx2_store(u + 4 * k, a0, a1, a2, a3);
        ud_avx2_store(u + 4 * k + 16, b0, b1, b2, b3);
        lanes = _mm256_add_epi64(lanes, eight);
    }
    ud_whole_blocks(u + 4 * k, b + k, count - k, r);
}

/* ud_whole_blocks with AVX-512F intrinsics (call only where the CPU has AVX-512F; every such CPU
 * has AVX2): the AVX2 form in 512-bit registers, eight blocks per register. The two three-way
 * XORs of a round are one vpternlogq each, and a product's high half is brought down by a shuffle
 * (vpshufd, another port than the multiply) where the AVX2 form shifts: the high halves are
 * garbage either way. Four independent sets of eight blocks per step hide the multiply's latency;
 * the blocks left over (fewer than 32) go to the AVX2 form. */
#define UD_HAVE_AVX512_BLOCKS 1
#if defined(__GNUC__) && !defined(__clang__)
/* GCC 12's AVX-512 intrinsics, inlined, warn of their own `__Y = __Y` (GCC bug 105593) */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#define UD_AVX512_ROUND(c0, c1, c2, c3, k0, k1, m0, m1)                                             \
    do {                                                                                           \
        __m512i p0_ = _mm512_mul_epu32(c0, m0), p1_ = _mm512_mul_epu32(c2, m1);                    \
        c0 = _mm512_ternarylogic_epi64(_mm512_shuffle_epi32(p1_, (_MM_PERM_ENUM)0xF5), c1, k0, 0x96); \
        c1 = p1_;                                                                                  \
        c2 = _mm512_ternarylogic_epi64(_mm512_shuffle_epi32(p0_, (_MM_PERM_ENUM)0xF5), c3, k1, 0x96); \
        c3 = p0_;                                                                                  \
    } while (0)

/* Eight blocks' words, one block per 64-bit lane of c0..c3, to u[0..31] in block order. */
__attribute__((target("avx512f"))) static inline void ud_avx512_store(ud_u32 *u, __m512i c0, __m512i c1,
                                                                      __m512i c2, __m512i c3) {
    const __m512i first = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
    const __m512i second = _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15);
    __m512i w01 = _mm512_mask_blend_epi32(0xAAAA, c0, _mm512_slli_epi64(c1, 32));
    __m512i w23 = _mm512_mask_blend_epi32(0xAAAA, c2, _mm512_slli_epi64(c3, 32));
    _mm512_storeu_si512((void *)u, _mm512_permutex2var_epi64(w01, first, w23));
    _mm512_storeu_si512((void *)(u + 16), _mm512_permutex2var_epi64(w01, second, w23));
}

/* Blocks b .. b+7 of a step: counter words (b mod 2^32, b >> 32) and the stream's two words. */
#define UD_AVX512_START(c0, c1, c2, c3, lanes, s0, s1) \
    do {                                               \
        c0 = lanes;                                    \
        c1 = _mm512_srli_epi64(lanes, 32);             \
        c2 = s0;                                       \
        c3 = s1;                                       \
    } while (0)

__attribute__((target("avx512f"))) UD_FN void ud_whole_blocks_avx512(ud_u32 *u, ud_u64 b, ud_u64 count,
                                                                     ud_rng r) {
    const __m512i m0 = _mm512_set1_epi64(UD_PHILOX_M0), m1 = _mm512_set1_epi64(UD_PHILOX_M1);
    const __m512i s0 = _mm512_set1_epi64(r.s0), s1 = _mm512_set1_epi64(r.s1);
    const __m512i eight = _mm512_set1_epi64(8);
    __m512i k0[UD_PHILOX_ROUNDS], k1[UD_PHILOX_ROUNDS];
    __m512i lanes = _mm512_add_epi64(_mm512_set1_epi64((long long)b), _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7));
    ud_u32 key0 = r.k0, key1 = r.k1;
    ud_u64 k = 0;
    int round;
    for (round = 0; round < UD_PHILOX_ROUNDS; ++round) {
        k0[round] = _mm512_set1_epi64(key0);
        k1[round] = _mm512_set1_epi64(key1);
        key0 += UD_PHILOX_W0;
        key1 += UD_PHILOX_W1;
    }
    for (; k + 32 <= count; k += 32) {
        __m512i a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, d0, d1, d2, d3;
        __m512i lanes1 = _mm512_add_epi64(lanes, eight), lanes2 = _mm512_add_epi64(lanes1, eight);
        __m512i lanes3 = _mm512_add_epi64(lanes2, eight);
        UD_AVX512_START(a0, a1, a2, a3, lanes, s0, s1);
        UD_AVX512_START(b0, b1, b2, b3, lanes1, s0, s1);
        UD_AVX512_START(c0, c1, c2, c3, lanes2, s0, s1);
        UD_AVX512_START(d0, d1, d2, d3, lanes3, s0, s1);
        for (round = 0; round < UD_PHILOX_ROUNDS; ++round) {
            UD_AVX512_ROUND(a0, a1, a2, a3, k0[round], k1[round], m0, m1);
            UD_AVX512_ROUND(b0, b1, b2, b3, k0[round], k1[round], m0, m1);
            UD_AVX512_ROUND(c0, c1, c2, c3, k0[round], k1[round], m0, m1);
            UD_AVX512_ROUND(d0, d1, d2, d3, k0[round], k1[round], m0, m1);
        }
        ud_avx512_store(u + 4 * k, a0, a1, a2, a3);
        ud_avx512_store(u + 4 * k + 32, b0, b1, b2, b3);
        ud_avx512_store(u + 4 * k + 64, c0, c1, c2, c3);
        ud_avx512_store(u + 4 * k + 96, d0, d1, d2, d3);
        lanes = _mm512_add_epi64(lanes3, eight);
    }
    ud_whole_blocks_avx2(u + 4 * k, b + k, count - k, r);
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

/* The words u_i of the n consecutive mask indices start .. start+n-1 into u[0..n-1]; `start` is
 * any index (not only a multiple of 4). The whole Philox blocks in the middle come from `blocks`
 * (ud_whole_blocks, or a SIMD version of it); the partial blocks at either end take what they
 * need. */
UD_FN void ud_fill_words_by(ud_u32 *u, ud_u64 start, ud_u64 n, ud_rng r, ud_blocks_fn blocks) {
    ud_u64 j = 0, whole;
    ud_u32 lane = (ud_u32)(start & 3u);
    if (n == 0) return;
    if (lane) { /* the head: the rest of the block start lies in */
        ud_words w = ud_philox_block_wide(start >> 2, r);
        for (; lane < 4u && j < n; ++lane, ++j) u[j] = ud_word(w, lane);
    }
    whole = (n - j) >> 2;
    blocks(u + j, (start + j) >> 2, whole, r);
    j += 4 * whole;
    if (j < n) { /* the tail: the first words of one more block */
        ud_words w = ud_philox_block_wide((start + j) >> 2, r);
        for (lane = 0; j < n; ++lane, ++j) u[j] = ud_word(w, lane);
    }
}

/* ud_fill_words_by with the portable block loop. */
UD_FN void ud_fill_words(ud_u32 *u, ud_u64 start, ud_u64 n, ud_rng r) {
    ud_fill_words_by(u, start, n, r, ud_whole_blocks);
}
#endif

#endif /* UNIDROP_MASK_STREAM_V1_H */
