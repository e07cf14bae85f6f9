/* Umbrella header of the kernel module (imported by Swift as CAdaKKernels). */
#include "adak_kernels.h"
#include "adak_ops.h"
#include "adak_blas.h"
#include "adak_grouped.h"
#include "adak_quantize.h"
