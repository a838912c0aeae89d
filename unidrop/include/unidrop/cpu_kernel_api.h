/* unidrop/cpu_kernel_api.h: the C entry point of unidrop-numpy's compiled CPU kernel, for other
 * compiled extensions (unidrop-jax's XLA FFI handler), exported as NumPy exports its C API: a
 * PyCapsule named UD_CPU_KERNEL_CAPSULE holding a pointer to a ud_cpu_kernel_api.
 *
 *     const ud_cpu_kernel_api *api = PyCapsule_Import(UD_CPU_KERNEL_CAPSULE, 0);
 *     if (api == NULL || api->version != UD_CPU_KERNEL_API_VERSION) ... fall back ...
 *
 * The functions behind it are the kernel's own loops (mask_stream_v1.h's Philox rounds and
 * rounding rules): another extension calls them rather than compiling a second copy. They never
 * touch Python objects and may run on any thread, several at once on disjoint element ranges.
 */
#ifndef UNIDROP_CPU_KERNEL_API_H
#define UNIDROP_CPU_KERNEL_API_H

#include <stdint.h>

#define UD_CPU_KERNEL_CAPSULE "unidrop_numpy._kernel._C_API"
#define UD_CPU_KERNEL_API_VERSION 1

/* Element kinds, as the kernel's Python entry point numbers them. */
enum { UD_KIND_FLOAT16 = 0, UD_KIND_BFLOAT16 = 1, UD_KIND_FLOAT32 = 2, UD_KIND_FLOAT64 = 3 };

typedef struct ud_cpu_kernel_api {
    int version; /* UD_CPU_KERNEL_API_VERSION */
    /* Mask stream v1 dropout of the C-contiguous array x (ndim <= 64 axes of sizes shape) into the
     * C-contiguous y of the same shape and kind, for the C-order elements start .. stop-1 only;
     * bit d of broadcast marks axis d as broadcast (mask size 1 along it). threshold is
     * floor(p * 2^32) < 2^32; scale is 1/(1-p) in float64 (rounded to float32 for every kind but
     * float64). Returns 0, or -1 (nothing written) for a bad kind, ndim or range. Floating-point
     * results follow the calling thread's floating-point environment (flush-to-zero modes). */
    int (*dropout)(int kind, const void *x, void *y, int ndim, const int64_t *shape, uint64_t broadcast,
                   uint64_t seed, uint64_t stream, uint32_t threshold, double scale, uint64_t start,
                   uint64_t stop);
} ud_cpu_kernel_api;

#endif
