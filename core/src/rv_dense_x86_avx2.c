/* The x86-64 fast kernels compiled for CPUs with AVX2, FMA and F16C (see rv_dense_x86_kernels.h). */
#define RV_X86_LEVEL RV_ISA_AVX2
#define RV_X86_TABLE rv_x86_avx2
#include "rv_dense_x86_kernels.h"
