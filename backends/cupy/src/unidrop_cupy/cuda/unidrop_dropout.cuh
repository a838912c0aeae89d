// unidrop mask stream v1 for one CUDA thread: the kernels' per-thread functions.
//
// The mask stream itself (Philox4x32-10, the keep decision, scale, select and the 16-bit
// rounding) is the core's one C source, unidrop/include/unidrop/mask_stream_v1.h
// (unidrop.get_include()); this header adds what is particular to CUDA threads: 16-byte vector
// loads and stores, and which elements each thread owns on the contiguous and strided paths.
//
// It compiles both for the GPU (NVRTC through CuPy, which gets the core header's text in front
// of this one, or nvcc) and for the host (g++ with -I at both folders), so the exact code each
// GPU thread runs can be checked on a machine without a GPU: the tests build a small host
// library that calls the same per-thread functions for every thread index and compare the
// result with the pure-Python reference.

#ifndef UNIDROP_DROPOUT_CUH
#define UNIDROP_DROPOUT_CUH

#ifndef UNIDROP_MASK_STREAM_V1_H
#include "unidrop/mask_stream_v1.h"
#endif

#if UD_CUDA
#define UD_ALIGN(n) __align__(n)
#else
#define UD_ALIGN(n) alignas(n)
#include <cstring>
#endif

// ---------------------------------------------------------------------------------------
// Vector loads and stores (the GPU build moves 16 and 8 bytes with one instruction)
// ---------------------------------------------------------------------------------------

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
// Dtypes: storage type, compute type, and the kept element's value (the core's scale rules).
// ---------------------------------------------------------------------------------------

struct ud_float16 {
    typedef ud_u16 storage;
    typedef float compute;
    static UD_HD storage apply(storage x, compute s) { return ud_scale_f16(x, s); }
    static UD_HD storage zero() { return 0; }
};

struct ud_bfloat16 {
    typedef ud_u16 storage;
    typedef float compute;
    static UD_HD storage apply(storage x, compute s) { return ud_scale_bf16(x, s); }
    static UD_HD storage zero() { return 0; }
};

struct ud_float32 {
    typedef float storage;
    typedef float compute;
    static UD_HD storage apply(storage x, compute s) { return ud_scale_f32(x, s); }
    static UD_HD storage zero() { return 0.0f; }
};

struct ud_float64 {
    typedef double storage;
    typedef double compute;
    static UD_HD storage apply(storage x, compute s) { return ud_scale_f64(x, s); }
    static UD_HD storage zero() { return 0.0; }
};


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
            bool keep = ud_keep(words.w[lane], r.t);
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
// General path: any strides (in elements, possibly negative or zero), broadcast dims, blocks.
// Thread g owns the output elements with logical C-order indices 4g .. 4g+3. Each element's
// mask index is computed from its coordinates (mstride 0 on broadcast axes), so the mask
// depends on the mask index alone; consecutive elements reuse the Philox block they share.
// The stream word of an element is that of mask_offset + sum(c[d] * pstride[d]): pstride is
// mstride for a whole array, and the global mask's strides for a block of a global mask
// (mask_offset is then the global index of the block's first mask element).
// The keep byte of mask index m is written once: by the element whose broadcast coordinates
// are all 0. With FROM_MASK the keep bytes are read from `mask` (a saved mask) instead.
// ---------------------------------------------------------------------------------------

#define UD_MAX_DIMS 8

// Layout of a (collapsed) array, C order; the same 328 bytes on host and device.
// mstride: the keep array's strides; pstride: the stream index's (see above).
struct ud_layout {
    ud_i64 ndim;
    ud_i64 shape[UD_MAX_DIMS];
    ud_i64 xstride[UD_MAX_DIMS];
    ud_i64 ystride[UD_MAX_DIMS];
    ud_i64 mstride[UD_MAX_DIMS];
    ud_i64 pstride[UD_MAX_DIMS];
};

// Where logical C-order element o lives: offsets in x and y, mask index, stream index (before
// mask_offset), its coordinate on the innermost axis, and whether its coordinates on the other
// broadcast axes are all 0.
template <class I>
UD_FN void ud_locate(ud_u64 o, const ud_layout& L, ud_i64& xo, ud_i64& yo, ud_u64& m, ud_u64& pm,
                     I& inner, bool& outer_writer) {
    I rest = (I)o;
    xo = 0;
    yo = 0;
    m = 0;
    pm = 0;
    inner = 0;
    outer_writer = true;
    for (int d = (int)L.ndim - 1; d >= 0; --d) {
        const I size = (I)L.shape[d];
        const I c = rest % size;
        rest /= size;
        xo += (ud_i64)c * L.xstride[d];
        yo += (ud_i64)c * L.ystride[d];
        m += (ud_u64)c * (ud_u64)L.mstride[d];
        pm += (ud_u64)c * (ud_u64)L.pstride[d];
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
    const ud_u64 pstep = last >= 0 ? (ud_u64)L.pstride[last] : 0;
    const bool inner_broadcast = last >= 0 && L.mstride[last] == 0;
    ud_i64 xo = 0, yo = 0;
    ud_u64 m = 0, pm = 0;
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
            pm += pstep;
        } else {
            ud_locate<I>(o, L, xo, yo, m, pm, inner, outer_writer);
        }
        bool keep;
        if (FROM_MASK) {
            keep = mask[m] != 0;
        } else {
            const ud_u64 mi = pm + mask_offset;
            if ((mi >> 2) != cached) {
                cached = mi >> 2;
                words = ud_philox_block(cached, r);
            }
            keep = ud_keep(ud_word(words, (ud_u32)(mi & 3u)), r.t);
            const bool writer = outer_writer && (!inner_broadcast || inner == 0);
            if (mask && writer) mask[m] = keep ? 1 : 0;
        }
        y[yo] = keep ? T::apply(x[xo], s) : T::zero();
    }
}

#endif  // UNIDROP_DROPOUT_CUH
