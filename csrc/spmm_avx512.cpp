// The CSR product rows for CPUs with AVX-512 (compiled with -mavx512f; see spmm_rows.inc).
#include "spmm_rows.inc"
