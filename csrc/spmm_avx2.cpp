// The CSR product rows for CPUs with AVX2 and FMA (compiled with -mavx2 -mfma; see spmm_rows.inc).
#include "spmm_rows.inc"
