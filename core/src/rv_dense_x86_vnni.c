/* The x86-64 fast kernels compiled for CPUs with AVX-512 VNNI (see rv_dense_x86_kernels.h). */
#define RV_X86_LEVEL RV_ISA_VNNI
#define RV_X86_TABLE rv_x86_vnni
#include "rv_dense_x86_kernels.h"
