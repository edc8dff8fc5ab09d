/* kernels_x86: AVX2 and AVX-512 matvec kernels (placeholder: not compiled yet). */
#include "kernels_impl.h"

const citer_kernel_set citer_kernels_avx2 = {0};
const citer_kernel_set citer_kernels_avx512 = {0};
int citer_cpu_has_avx2(void) { return 0; }
int citer_cpu_has_avx512(void) { return 0; }
