/* The x86-64 fast kernels compiled for CPUs with AVX-512 (F, BW, VL, DQ) (see rv_dense_x86_kernels.h). */
#define RV_X86_LEVEL RV_ISA_AVX512
#define RV_X86_TABLE rv_x86_avx512
#include "rv_dense_x86_kernels.h"
