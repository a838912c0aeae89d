// Host build of unidrop's CUDA kernels, for exactness tests without a GPU.
//
// Each entry point runs the per-thread function of unidrop_dropout.cuh for every thread
// index the corresponding __global__ kernel in unidrop_kernels.cu would cover, with the same
// blocks-per-thread constants (passed as -D flags from unidrop_cupy.source). Built by the
// tests with: g++ -O2 -std=c++14 -shared -fPIC -ffp-contract=off -I<package cuda dir>
// -I<unidrop.get_include()> (the core header of mask stream v1).

#include "unidrop_dropout.cuh"

#ifndef UD_U_HALF
#error "pass -DUD_U_HALF=... (unidrop_cupy.source.BLOCKS_PER_THREAD)"
#endif

#define HOST_RNG()                  \
    ud_rng r;                       \
    r.k0 = k0; r.k1 = k1; r.s0 = s0; r.s1 = s1; r.t = t

// One strided thread g with the index type the GPU kernel picks: 64-bit when `wide` (n > 2^32 - 1,
// or forced by a test), else 32-bit.
template <class T>
static void host_strided_group(ud_u64 g, const void* x, void* y, ud_u8* mask, const ud_layout& L,
                               ud_u64 n, ud_u64 mask_offset, const ud_rng& r,
                               typename T::compute s, bool wide) {
    typedef typename T::storage S;
    if (wide)
        ud_strided_thread<T, ud_u64, false>(g, (const S*)x, (S*)y, mask, L, n, mask_offset, r, s);
    else
        ud_strided_thread<T, ud_u32, false>(g, (const S*)x, (S*)y, mask, L, n, mask_offset, r, s);
}

#define HOST_ENTRY_POINTS(NAME, TYPE, U)                                                        \
    extern "C" void host_contig_##NAME(const void* x, void* y, ud_u8* mask, ud_u64 n,            \
                                       ud_u64 first_block, ud_u32 k0, ud_u32 k1, ud_u32 s0,      \
                                       ud_u32 s1, ud_u32 t, TYPE::compute s, int vec) {          \
        HOST_RNG();                                                                             \
        const ud_u64 groups = (n + 4 * (U) - 1) / (4 * (U));                                    \
        for (ud_u64 g = 0; g < groups; ++g)                                                     \
            ud_contig_thread<TYPE, (U)>(g, (const TYPE::storage*)x, (TYPE::storage*)y, mask, n, \
                                        first_block, r, s, vec);                                \
    }                                                                                           \
    extern "C" void host_strided_##NAME(const void* x, void* y, ud_u8* mask, const ud_layout* L,  \
                                        ud_u64 n, ud_u64 mask_offset, ud_u32 k0, ud_u32 k1,      \
                                        ud_u32 s0, ud_u32 s1, ud_u32 t, TYPE::compute s,         \
                                        int wide_index) {                                       \
        HOST_RNG();                                                                             \
        const ud_u64 groups = (n + 3) / 4;                                                      \
        for (ud_u64 g = 0; g < groups; ++g)                                                     \
            host_strided_group<TYPE>(g, x, y, mask, *L, n, mask_offset, r, s,                   \
                                     n > 0xFFFFFFFFull || wide_index);                          \
    }                                                                                           \
    extern "C" void host_apply_##NAME(const void* x, void* y, ud_u8* mask, const ud_layout* L,    \
                                      ud_u64 n, TYPE::compute s) {                              \
        ud_rng r;                                                                               \
        r.k0 = r.k1 = r.s0 = r.s1 = r.t = 0;                                                    \
        const ud_u64 groups = (n + 3) / 4;                                                      \
        for (ud_u64 g = 0; g < groups; ++g)                                                     \
            ud_strided_thread<TYPE, ud_u32, true>(g, (const TYPE::storage*)x, (TYPE::storage*)y, \
                                                  mask, *L, n, 0, r, s);                        \
    }

// The threads g_begin .. g_end-1 alone, with the index type the GPU kernel picks for n: what
// those GPU threads do for an array of n elements, without touching the others. With pointers
// placed so that only those threads' elements are real memory, this checks the index
// arithmetic of arrays past 2^32 and 2^34 elements without allocating them.
#define HOST_RANGE_ENTRY_POINTS(NAME, TYPE, U)                                                  \
    extern "C" void host_contig_range_##NAME(const void* x, void* y, ud_u8* mask, ud_u64 n,      \
                                             ud_u64 first_block, ud_u32 k0, ud_u32 k1,           \
                                             ud_u32 s0, ud_u32 s1, ud_u32 t, TYPE::compute s,    \
                                             int vec, ud_u64 g_begin, ud_u64 g_end) {            \
        HOST_RNG();                                                                             \
        for (ud_u64 g = g_begin; g < g_end; ++g)                                                \
            ud_contig_thread<TYPE, (U)>(g, (const TYPE::storage*)x, (TYPE::storage*)y, mask, n, \
                                        first_block, r, s, vec);                                \
    }                                                                                           \
    extern "C" void host_strided_range_##NAME(const void* x, void* y, ud_u8* mask,               \
                                              const ud_layout* L, ud_u64 n, ud_u64 mask_offset,  \
                                              ud_u32 k0, ud_u32 k1, ud_u32 s0, ud_u32 s1,        \
                                              ud_u32 t, TYPE::compute s, ud_u64 g_begin,         \
                                              ud_u64 g_end) {                                    \
        HOST_RNG();                                                                             \
        for (ud_u64 g = g_begin; g < g_end; ++g)                                                \
            host_strided_group<TYPE>(g, x, y, mask, *L, n, mask_offset, r, s, n > 0xFFFFFFFFull); \
    }

HOST_RANGE_ENTRY_POINTS(float16, ud_float16, UD_U_HALF)
HOST_RANGE_ENTRY_POINTS(bfloat16, ud_bfloat16, UD_U_HALF)
HOST_RANGE_ENTRY_POINTS(float32, ud_float32, UD_U_F32)
HOST_RANGE_ENTRY_POINTS(float64, ud_float64, UD_U_F64)

HOST_ENTRY_POINTS(float16, ud_float16, UD_U_HALF)
HOST_ENTRY_POINTS(bfloat16, ud_bfloat16, UD_U_HALF)
HOST_ENTRY_POINTS(float32, ud_float32, UD_U_F32)
HOST_ENTRY_POINTS(float64, ud_float64, UD_U_F64)

extern "C" void host_philox_block(ud_u64 block, ud_u32 k0, ud_u32 k1, ud_u32 s0, ud_u32 s1,
                                  ud_u32* out) {
    ud_rng r;
    r.k0 = k0; r.k1 = k1; r.s0 = s0; r.s1 = s1; r.t = 0;
    ud_words w = ud_philox_block(block, r);
    for (int k = 0; k < 4; ++k) out[k] = w.w[k];
}

extern "C" void host_f32_to_f16(const ud_u32* bits, ud_u16* out, ud_u64 n) {
    for (ud_u64 i = 0; i < n; ++i) out[i] = ud_f32_to_f16_soft(ud_bits_f32(bits[i]));
}

extern "C" void host_f32_to_bf16(const ud_u32* bits, ud_u16* out, ud_u64 n) {
    for (ud_u64 i = 0; i < n; ++i) out[i] = ud_f32_to_bf16(ud_bits_f32(bits[i]));
}

extern "C" void host_f16_to_f32(const ud_u16* bits, ud_u32* out, ud_u64 n) {
    for (ud_u64 i = 0; i < n; ++i) out[i] = ud_f32_bits(ud_f16_to_f32_soft(bits[i]));
}

extern "C" ud_u64 host_layout_size() { return sizeof(ud_layout); }
