// unidrop mask stream v1: Philox4x32-10, mask, scale and select, for one CUDA thread.
//
// This header compiles both for the GPU (NVRTC through CuPy, or nvcc) and for the host
// (g++), so the exact code each GPU thread runs can be checked on a machine without a GPU:
// the tests build a small host library that calls the same per-thread functions for every
// thread index and compare the result with the pure-Python reference.
//
// What differs between the two builds is confined to the primitives at the top: 32x32->64
// multiply-high, bit casts, 16-byte loads/stores, the IEEE multiply, and float<->float16
// conversion (hardware cvt.rn on sm_53+ GPUs, an integer round-to-nearest-even routine on
// the host and as the fallback). Everything that decides *which* mask word an element uses
// and *what* it outputs is shared.
//
// Promises (mask stream v1): element i of the mask shape M uses word (i & 3) of
// Philox4x32-10 with counter (b mod 2^32, b >> 32, stream mod 2^32, stream >> 32),
// b = i >> 2, and key (seed mod 2^32, seed >> 32); it is dropped iff that word < t;
// dropped -> +0 exactly (a select), kept -> x * s in the compute dtype, rounded to nearest
// even back to a 16-bit storage dtype.

#ifndef UNIDROP_DROPOUT_CUH
#define UNIDROP_DROPOUT_CUH

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define UD_CUDA 1
#define UD_HD __device__ __forceinline__
#define UD_UNROLL _Pragma("unroll")
#define UD_ALIGN(n) __align__(n)
#else
#define UD_CUDA 0
#define UD_HD inline
#define UD_UNROLL
#define UD_ALIGN(n) alignas(n)
#include <cstring>
#endif

#define UD_FN static UD_HD

typedef unsigned char ud_u8;
typedef unsigned short ud_u16;
typedef unsigned int ud_u32;
typedef unsigned long long ud_u64;
typedef long long ud_i64;

// ---------------------------------------------------------------------------------------
// Primitives (the only code that differs between the GPU and host builds)
// ---------------------------------------------------------------------------------------

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
    std::memcpy(&u, &v, sizeof u);
    return u;
#endif
}

UD_FN float ud_bits_f32(ud_u32 u) {
#if UD_CUDA
    return __uint_as_float(u);
#else
    float v;
    std::memcpy(&v, &u, sizeof v);
    return v;
#endif
}

// IEEE products, never contracted into a fused multiply-add. On the GPU the float product is
// inline PTX without .ftz: CuPy compiles every kernel with -ftz=true, which would turn
// __fmul_rn into mul.rn.ftz.f32 and flush subnormal inputs and results (float32 and bfloat16
// have subnormals the spec keeps) to zero.
UD_FN float ud_mul_f32(float a, float b) {
#if UD_CUDA
    float r;
    asm("mul.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
#else
    return a * b;  // the host build uses -ffp-contract=off
#endif
}

UD_FN double ud_mul_f64(double a, double b) {
#if UD_CUDA
    return __dmul_rn(a, b);
#else
    return a * b;
#endif
}

// Sixteen and eight bytes moved by one instruction on the GPU (LDG.128 / LDG.64).
union UD_ALIGN(16) ud_vec16 {
    ud_u32 u[4];
    float f[4];
    double d[2];
    ud_u16 h[8];
};

union UD_ALIGN(8) ud_vec8 {
    ud_u32 u[2];
    ud_u16 h[4];
};

UD_FN ud_vec16 ud_load16(const void* p) {
    ud_vec16 v;
#if UD_CUDA
    uint4 q = __ldg(reinterpret_cast<const uint4*>(p));
    v.u[0] = q.x; v.u[1] = q.y; v.u[2] = q.z; v.u[3] = q.w;
#else
    std::memcpy(&v, p, sizeof v);
#endif
    return v;
}

UD_FN void ud_store16(void* p, const ud_vec16& v) {
#if UD_CUDA
    *reinterpret_cast<uint4*>(p) = make_uint4(v.u[0], v.u[1], v.u[2], v.u[3]);
#else
    std::memcpy(p, &v, sizeof v);
#endif
}

UD_FN ud_vec8 ud_load8(const void* p) {
    ud_vec8 v;
#if UD_CUDA
    uint2 q = __ldg(reinterpret_cast<const uint2*>(p));
    v.u[0] = q.x; v.u[1] = q.y;
#else
    std::memcpy(&v, p, sizeof v);
#endif
    return v;
}

UD_FN void ud_store8(void* p, const ud_vec8& v) {
#if UD_CUDA
    *reinterpret_cast<uint2*>(p) = make_uint2(v.u[0], v.u[1]);
#else
    std::memcpy(p, &v, sizeof v);
#endif
}

UD_FN void ud_store_mask4(ud_u8* p, ud_u32 packed) {
#if UD_CUDA
    *reinterpret_cast<ud_u32*>(p) = packed;  // p is 4-byte aligned: a fresh array, offset 4*b
#else
    std::memcpy(p, &packed, sizeof packed);  // little-endian: byte k is element k
#endif
}

// ---------------------------------------------------------------------------------------
// 16-bit conversions. Widening is exact; narrowing rounds to nearest, ties to even.
// ---------------------------------------------------------------------------------------

// float16 bits -> float (exact), integer version.
UD_FN float ud_f16_to_f32_soft(ud_u16 h) {
    ud_u32 sign = (ud_u32)(h & 0x8000u) << 16;
    ud_u32 exponent = (h >> 10) & 0x1Fu;
    ud_u32 mantissa = h & 0x3FFu;
    if (exponent == 0x1Fu) return ud_bits_f32(sign | 0x7F800000u | (mantissa << 13));  // inf, NaN
    if (exponent != 0) return ud_bits_f32(sign | ((exponent + 112u) << 23) | (mantissa << 13));
    // zero or subnormal: mantissa * 2^-24, exact in float
    float magnitude = (float)mantissa * 5.9604644775390625e-8f;
    return ud_bits_f32(sign | ud_f32_bits(magnitude));
}

// float -> float16 bits, round to nearest even; overflow -> inf; NaN stays NaN (quiet).
UD_FN ud_u16 ud_f32_to_f16_soft(float v) {
    ud_u32 f = ud_f32_bits(v);
    ud_u32 sign = (f >> 16) & 0x8000u;
    ud_u32 a = f & 0x7FFFFFFFu;
    if (a >= 0x7F800000u) return (ud_u16)(sign | (a > 0x7F800000u ? 0x7E00u : 0x7C00u));
    if (a >= 0x477FF000u) return (ud_u16)(sign | 0x7C00u);  // >= 65520 rounds to inf
    if (a >= 0x38800000u) {                                   // normal float16 (>= 2^-14)
        ud_u32 odd = (a >> 13) & 1u;
        return (ud_u16)(sign | ((a - 0x38000000u + 0xFFFu + odd) >> 13));
    }
    if (a <= 0x33000000u) return (ud_u16)sign;  // <= 2^-25: rounds to zero (2^-25 is a tie to 0)
    // subnormal float16: round (1.m * 2^(e-127)) / 2^-24 to an integer
    ud_u32 e = a >> 23;
    ud_u32 m = (a & 0x7FFFFFu) | 0x800000u;
    ud_u32 shift = 126u - e;  // 14 .. 24
    ud_u32 q = m >> shift;
    ud_u32 rest = m & ((1u << shift) - 1u);
    ud_u32 half = 1u << (shift - 1u);
    q += (rest > half || (rest == half && (q & 1u))) ? 1u : 0u;
    return (ud_u16)(sign | q);  // q may reach 0x400: the smallest normal, correctly encoded
}

// float -> bfloat16 bits, round to nearest even; NaN stays NaN (quiet).
UD_FN ud_u16 ud_f32_to_bf16(float v) {
    ud_u32 f = ud_f32_bits(v);
    if ((f & 0x7FFFFFFFu) > 0x7F800000u) return (ud_u16)((f >> 16) | 0x40u);
    f += 0x7FFFu + ((f >> 16) & 1u);  // finite overflow carries into the exponent: inf
    return (ud_u16)(f >> 16);
}

UD_FN float ud_bf16_to_f32(ud_u16 h) { return ud_bits_f32((ud_u32)h << 16); }

UD_FN float ud_f16_to_f32(ud_u16 h) {
#if UD_CUDA && !defined(UD_SOFT_HALF) && __CUDA_ARCH__ >= 530  // cvt to and from f16: sm_53+
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
#else
    return ud_f16_to_f32_soft(h);
#endif
}

UD_FN ud_u16 ud_f32_to_f16(float v) {
#if UD_CUDA && !defined(UD_SOFT_HALF) && __CUDA_ARCH__ >= 530  // cvt to and from f16: sm_53+
    ud_u16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(v));
    return h;
#else
    return ud_f32_to_f16_soft(v);
#endif
}

// ---------------------------------------------------------------------------------------
// Dtypes: storage type, compute type, and the kept element's value.
// ---------------------------------------------------------------------------------------

struct ud_float16 {
    typedef ud_u16 storage;
    typedef float compute;
    static UD_HD storage apply(storage x, compute s) { return ud_f32_to_f16(ud_mul_f32(ud_f16_to_f32(x), s)); }
    static UD_HD storage zero() { return 0; }
};

struct ud_bfloat16 {
    typedef ud_u16 storage;
    typedef float compute;
    static UD_HD storage apply(storage x, compute s) { return ud_f32_to_bf16(ud_mul_f32(ud_bf16_to_f32(x), s)); }
    static UD_HD storage zero() { return 0; }
};

struct ud_float32 {
    typedef float storage;
    typedef float compute;
    static UD_HD storage apply(storage x, compute s) { return ud_mul_f32(x, s); }
    static UD_HD storage zero() { return 0.0f; }
};

struct ud_float64 {
    typedef double storage;
    typedef double compute;
    static UD_HD storage apply(storage x, compute s) { return ud_mul_f64(x, s); }
    static UD_HD storage zero() { return 0.0; }
};

// ---------------------------------------------------------------------------------------
// Philox4x32-10 and the mask stream
// ---------------------------------------------------------------------------------------

struct ud_rng {
    ud_u32 k0, k1;  // seed mod 2^32, seed >> 32
    ud_u32 s0, s1;  // stream mod 2^32, stream >> 32
    ud_u32 t;       // threshold floor(p * 2^32); p == 1 never reaches a kernel
};

struct ud_words {
    ud_u32 w[4];
};

// The four words of Philox block b (mask elements 4b .. 4b+3).
UD_FN ud_words ud_philox_block(ud_u64 b, const ud_rng& r) {
    ud_u32 c0 = (ud_u32)b, c1 = (ud_u32)(b >> 32), c2 = r.s0, c3 = r.s1;
    ud_u32 k0 = r.k0, k1 = r.k1;
    UD_UNROLL
    for (int round = 0; round < 10; ++round) {
        ud_u32 hi0 = ud_mulhi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        ud_u32 hi1 = ud_mulhi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    ud_words out;
    out.w[0] = c0; out.w[1] = c1; out.w[2] = c2; out.w[3] = c3;
    return out;
}

// Word `lane` (0..3) of a block, by selects: a dynamically indexed array would live in local memory.
UD_FN ud_u32 ud_word(const ud_words& words, ud_u32 lane) {
    const ud_u32 low = (lane & 1u) ? words.w[1] : words.w[0];
    const ud_u32 high = (lane & 1u) ? words.w[3] : words.w[2];
    return (lane & 2u) ? high : low;
}

// ---------------------------------------------------------------------------------------
// Fast path: x and y C-contiguous with the same flat index as the mask (no broadcast).
// Thread g owns Philox blocks g*U .. g*U+U-1, i.e. elements 4gU .. 4gU+4U-1, and uses all
// four words of each block. With vec != 0 (x 16-byte aligned, or 8-byte for one block of a
// 16-bit dtype) a full group is moved with 16/8-byte loads and stores.
// ---------------------------------------------------------------------------------------

template <class T, int U>
union ud_group {
    enum { BYTES = 4 * U * (int)sizeof(typename T::storage) };
    typename T::storage v[4 * U];
    ud_u32 u[BYTES / 4];
};

template <class T, int U>
UD_FN void ud_load_group(const typename T::storage* p, ud_group<T, U>& g) {
    if (ud_group<T, U>::BYTES == 8) {
        ud_vec8 q = ud_load8(p);
        g.u[0] = q.u[0];
        g.u[1] = q.u[1];
    } else {
        UD_UNROLL
        for (int c = 0; c < ud_group<T, U>::BYTES / 16; ++c) {
            ud_vec16 q = ud_load16(reinterpret_cast<const char*>(p) + 16 * c);
            UD_UNROLL
            for (int k = 0; k < 4; ++k) g.u[4 * c + k] = q.u[k];
        }
    }
}

template <class T, int U>
UD_FN void ud_store_group(typename T::storage* p, const ud_group<T, U>& g) {
    if (ud_group<T, U>::BYTES == 8) {
        ud_vec8 q;
        q.u[0] = g.u[0];
        q.u[1] = g.u[1];
        ud_store8(p, q);
    } else {
        UD_UNROLL
        for (int c = 0; c < ud_group<T, U>::BYTES / 16; ++c) {
            ud_vec16 q;
            UD_UNROLL
            for (int k = 0; k < 4; ++k) q.u[k] = g.u[4 * c + k];
            ud_store16(reinterpret_cast<char*>(p) + 16 * c, q);
        }
    }
}

// n: elements; first_block: Philox block of element 0 (mask index offset / 4).
template <class T, int U>
UD_FN void ud_contig_thread(ud_u64 g, const typename T::storage* __restrict__ x,
                            typename T::storage* __restrict__ y, ud_u8* __restrict__ mask, ud_u64 n,
                            ud_u64 first_block, const ud_rng& r, typename T::compute s, int vec) {
    const ud_u64 start = g * (ud_u64)(4 * U);
    if (start >= n) return;
    const bool full = start + (ud_u64)(4 * U) <= n;
    ud_group<T, U> in, out;
    if (full && vec) {
        ud_load_group<T, U>(x + start, in);
    } else {
        UD_UNROLL
        for (int k = 0; k < 4 * U; ++k) in.v[k] = (start + k < n) ? x[start + k] : T::zero();
    }
    ud_u32 packed[U];
    UD_UNROLL
    for (int u = 0; u < U; ++u) {
        ud_words words = ud_philox_block(first_block + g * (ud_u64)U + (ud_u64)u, r);
        packed[u] = 0;
        UD_UNROLL
        for (int lane = 0; lane < 4; ++lane) {
            bool keep = words.w[lane] >= r.t;
            out.v[4 * u + lane] = keep ? T::apply(in.v[4 * u + lane], s) : T::zero();
            packed[u] |= (keep ? 1u : 0u) << (8 * lane);
        }
    }
    if (full && vec) {
        ud_store_group<T, U>(y + start, out);
    } else {
        UD_UNROLL
        for (int k = 0; k < 4 * U; ++k)
            if (start + k < n) y[start + k] = out.v[k];
    }
    if (mask) {
        if (full) {
            UD_UNROLL
            for (int u = 0; u < U; ++u) ud_store_mask4(mask + start + 4 * u, packed[u]);
        } else {
            UD_UNROLL
            for (int k = 0; k < 4 * U; ++k)
                if (start + k < n) mask[start + k] = (ud_u8)((packed[k / 4] >> (8 * (k % 4))) & 1u);
        }
    }
}

// ---------------------------------------------------------------------------------------
// General path: any strides (in elements, possibly negative or zero), broadcast dims.
// Thread g owns the output elements with logical C-order indices 4g .. 4g+3. Each element's
// mask index is computed from its coordinates (mstride 0 on broadcast axes), so the mask
// depends on the mask index alone; consecutive elements reuse the Philox block they share.
// The keep byte of mask index m is written once: by the element whose broadcast coordinates
// are all 0. With FROM_MASK the keep bytes are read from `mask` (a saved mask) instead.
// ---------------------------------------------------------------------------------------

#define UD_MAX_DIMS 8

// Layout of a (collapsed) array, C order; the same 264 bytes on host and device.
struct ud_layout {
    ud_i64 ndim;
    ud_i64 shape[UD_MAX_DIMS];
    ud_i64 xstride[UD_MAX_DIMS];
    ud_i64 ystride[UD_MAX_DIMS];
    ud_i64 mstride[UD_MAX_DIMS];
};

// Where logical C-order element o lives: offsets in x and y, mask index, its coordinate on the
// innermost axis, and whether its coordinates on the other broadcast axes are all 0.
template <class I>
UD_FN void ud_locate(ud_u64 o, const ud_layout& L, ud_i64& xo, ud_i64& yo, ud_u64& m, I& inner,
                     bool& outer_writer) {
    I rest = (I)o;
    xo = 0;
    yo = 0;
    m = 0;
    inner = 0;
    outer_writer = true;
    for (int d = (int)L.ndim - 1; d >= 0; --d) {
        const I size = (I)L.shape[d];
        const I c = rest % size;
        rest /= size;
        xo += (ud_i64)c * L.xstride[d];
        yo += (ud_i64)c * L.ystride[d];
        m += (ud_u64)c * (ud_u64)L.mstride[d];
        if (d == (int)L.ndim - 1)
            inner = c;
        else
            outer_writer = outer_writer && (L.mstride[d] != 0 || c == 0);
    }
}

// The divisions are done once per thread, and again only when its four elements cross the
// end of the innermost axis; otherwise the next element is one innermost step further.
template <class T, class I, bool FROM_MASK>
UD_FN void ud_strided_thread(ud_u64 g, const typename T::storage* __restrict__ x,
                             typename T::storage* __restrict__ y, ud_u8* __restrict__ mask,
                             const ud_layout& L, ud_u64 n, ud_u64 mask_offset, const ud_rng& r,
                             typename T::compute s) {
    const int last = (int)L.ndim - 1;
    const I inner_size = last >= 0 ? (I)L.shape[last] : (I)1;
    const ud_i64 xstep = last >= 0 ? L.xstride[last] : 0;
    const ud_i64 ystep = last >= 0 ? L.ystride[last] : 0;
    const ud_u64 mstep = last >= 0 ? (ud_u64)L.mstride[last] : 0;
    const bool inner_broadcast = last >= 0 && L.mstride[last] == 0;
    ud_i64 xo = 0, yo = 0;
    ud_u64 m = 0;
    I inner = 0;
    bool outer_writer = true;
    ud_u64 cached = ~0ull;
    ud_words words;
    words.w[0] = words.w[1] = words.w[2] = words.w[3] = 0;
    UD_UNROLL
    for (int k = 0; k < 4; ++k) {
        const ud_u64 o = g * 4ull + (ud_u64)k;
        if (o >= n) return;
        if (k > 0 && inner + 1 < inner_size) {
            inner += 1;
            xo += xstep;
            yo += ystep;
            m += mstep;
        } else {
            ud_locate<I>(o, L, xo, yo, m, inner, outer_writer);
        }
        bool keep;
        if (FROM_MASK) {
            keep = mask[m] != 0;
        } else {
            const ud_u64 mi = m + mask_offset;
            if ((mi >> 2) != cached) {
                cached = mi >> 2;
                words = ud_philox_block(cached, r);
            }
            keep = ud_word(words, (ud_u32)(mi & 3u)) >= r.t;
            const bool writer = outer_writer && (!inner_broadcast || inner == 0);
            if (mask && writer) mask[m] = keep ? 1 : 0;
        }
        y[yo] = keep ? T::apply(x[xo], s) : T::zero();
    }
}

#endif  // UNIDROP_DROPOUT_CUH
