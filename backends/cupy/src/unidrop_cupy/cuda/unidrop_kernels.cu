// unidrop's CUDA kernels: grid-stride loops over the per-thread functions of
// unidrop_dropout.cuh (which the host tests run for every thread index).
//
// Compiled by CuPy (NVRTC) from the text of unidrop_dropout.cuh followed by this file, or by
// nvcc with -I pointing at this folder. One launch reads x once and writes y once (and the
// keep mask, when asked); nothing is synchronised with the host.

#ifndef UNIDROP_DROPOUT_CUH
#include "unidrop_dropout.cuh"
#endif

// Philox blocks per thread on the fast path: 16-byte accesses for every dtype by default.
#ifndef UD_U_HALF
#define UD_U_HALF 2
#endif
#ifndef UD_U_F32
#define UD_U_F32 1
#endif
#ifndef UD_U_F64
#define UD_U_F64 1
#endif

#define UD_GRID_STRIDE_LOOP(g, count)                                                      \
    for (ud_u64 g = (ud_u64)blockIdx.x * blockDim.x + threadIdx.x; g < (count);           \
         g += (ud_u64)gridDim.x * blockDim.x)

#define UD_RNG()                          \
    ud_rng r;                             \
    r.k0 = k0; r.k1 = k1; r.s0 = s0; r.s1 = s1; r.t = t

#define UD_KERNELS(NAME, TYPE, U)                                                          \
    extern "C" __global__ void __launch_bounds__(256)                                      \
    unidrop_contig_##NAME(const TYPE::storage* __restrict__ x, TYPE::storage* __restrict__ y, \
                          ud_u8* __restrict__ mask, ud_u64 n, ud_u64 first_block,           \
                          ud_u32 k0, ud_u32 k1, ud_u32 s0, ud_u32 s1, ud_u32 t,             \
                          TYPE::compute s, int vec) {                                      \
        UD_RNG();                                                                          \
        const ud_u64 groups = (n + 4 * (U) - 1) / (4 * (U));                               \
        UD_GRID_STRIDE_LOOP(g, groups)                                                     \
        ud_contig_thread<TYPE, (U)>(g, x, y, mask, n, first_block, r, s, vec);             \
    }                                                                                      \
    extern "C" __global__ void __launch_bounds__(256)                                      \
    unidrop_strided_##NAME(const TYPE::storage* __restrict__ x, TYPE::storage* __restrict__ y, \
                           ud_u8* __restrict__ mask, const ud_layout layout, ud_u64 n,     \
                           ud_u64 mask_offset, ud_u32 k0, ud_u32 k1, ud_u32 s0, ud_u32 s1, \
                           ud_u32 t, TYPE::compute s) {                                    \
        UD_RNG();                                                                          \
        const ud_u64 groups = (n + 3) / 4;                                                 \
        if (n <= 0xFFFFFFFFull) {                                                          \
            UD_GRID_STRIDE_LOOP(g, groups)                                                 \
            ud_strided_thread<TYPE, ud_u32, false>(g, x, y, mask, layout, n, mask_offset, r, s); \
        } else {                                                                           \
            UD_GRID_STRIDE_LOOP(g, groups)                                                 \
            ud_strided_thread<TYPE, ud_u64, false>(g, x, y, mask, layout, n, mask_offset, r, s); \
        }                                                                                  \
    }                                                                                      \
    extern "C" __global__ void __launch_bounds__(256)                                      \
    unidrop_apply_##NAME(const TYPE::storage* __restrict__ x, TYPE::storage* __restrict__ y, \
                         ud_u8* __restrict__ mask, const ud_layout layout, ud_u64 n,       \
                         TYPE::compute s) {                                                \
        ud_rng r;                                                                          \
        r.k0 = r.k1 = r.s0 = r.s1 = r.t = 0;                                               \
        const ud_u64 groups = (n + 3) / 4;                                                 \
        if (n <= 0xFFFFFFFFull) {                                                          \
            UD_GRID_STRIDE_LOOP(g, groups)                                                 \
            ud_strided_thread<TYPE, ud_u32, true>(g, x, y, mask, layout, n, 0, r, s);      \
        } else {                                                                           \
            UD_GRID_STRIDE_LOOP(g, groups)                                                 \
            ud_strided_thread<TYPE, ud_u64, true>(g, x, y, mask, layout, n, 0, r, s);      \
        }                                                                                  \
    }

UD_KERNELS(float16, ud_float16, UD_U_HALF)
UD_KERNELS(bfloat16, ud_bfloat16, UD_U_HALF)
UD_KERNELS(float32, ud_float32, UD_U_F32)
UD_KERNELS(float64, ud_float64, UD_U_F64)
