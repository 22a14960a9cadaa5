// Sparse x dense products for the propagation operators of a graph, and dropout given its mask.
//
// libtorch differentiates `A.mm(X)` for a CSR matrix A by converting A's transpose to CSR on
// every backward pass: on the arxiv-shaped graph that conversion cost more than the product
// itself (0.34 s against 0.12 s). A graph's operators are fixed, so the transpose is built once
// (or is A itself, for the symmetric operators of an undirected graph) and handed in here.
//
// The product itself (`csr_mm`) has a kernel of its own on x86 CPUs with AVX-512 or AVX2: each
// output row is summed in vector registers over its neighbours' rows, then stored once. On the
// arxiv-shaped graph (169k nodes, 2.5M entries, 256 features) libtorch's CSR product (MKL) took
// 1.6x as long (docs/performance.md). Anything else (CUDA, other dtypes, other CPUs) goes to
// libtorch.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define GNN_SOUP_X86_KERNELS 1
#endif

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// Runs `work(begin, end)` over `0 .. n` split into at most at::get_num_threads() contiguous
// parts at the cuts `cut(k, parts)` gives, one per thread, the calling thread taking the first.
// at::parallel_for cannot be used here: its OpenMP body is inlined into this file, which is
// compiled without OpenMP (libtorch's bundled runtime is not one this build can link), so it
// would run on one thread.
template <typename Cut, typename Work>
void split_among_threads(int64_t n, int64_t min_per_thread, const Cut &cut, const Work &work) {
  const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), n / std::max<int64_t>(min_per_thread, 1)));
  if (parts == 1) return work(int64_t{0}, n);
  std::exception_ptr failure;
  std::mutex failure_lock;
  const auto run = [&](int64_t begin, int64_t end) {
    try {
      work(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> hold(failure_lock);
      failure = std::current_exception();
    }
  };
  // Joined on every way out; a part whose thread cannot be started (a thread limit, as under
  // some schedulers) runs on the calling thread instead.
  struct JoinAll {
    std::vector<std::thread> threads;
    ~JoinAll() {
      for (auto &t : threads) t.join();
    }
  } helpers;
  helpers.threads.reserve(parts - 1);
  for (int64_t k = 1; k < parts; ++k) {
    const int64_t begin = cut(k, parts), end = k + 1 == parts ? n : cut(k + 1, parts);
    try {
      helpers.threads.emplace_back(run, begin, end);
    } catch (const std::system_error &) {
      run(begin, end);
    }
  }
  run(int64_t{0}, cut(1, parts));
  for (auto &t : helpers.threads) t.join();
  helpers.threads.clear();
  if (failure) std::rethrow_exception(failure);
}

// Cuts `0 .. n` into equal parts.
inline int64_t even_cut(int64_t n, int64_t k, int64_t parts) { return n * k / parts; }

// ---- The CSR product's own kernel -------------------------------------------------------------

enum class SpmmKernel { Libtorch, Avx2, Avx512 };

// Whether this CPU runs `kernel`.
bool cpu_runs(SpmmKernel kernel) {
#ifdef GNN_SOUP_X86_KERNELS
  __builtin_cpu_init();
  if (kernel == SpmmKernel::Avx512) return __builtin_cpu_supports("avx512f");
  if (kernel == SpmmKernel::Avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return kernel == SpmmKernel::Libtorch;
}

// The widest kernel this CPU runs, unless GNN_SOUP_SPMM (libtorch, avx2) names a narrower one
// (for benchmarks; a kernel the CPU lacks is never chosen).
SpmmKernel chosen_kernel() {
  static const SpmmKernel chosen = [] {
    const char *env = std::getenv("GNN_SOUP_SPMM");
    const std::string want = env ? env : "";
    if (want == "libtorch") return SpmmKernel::Libtorch;
    if (want != "avx2" && cpu_runs(SpmmKernel::Avx512)) return SpmmKernel::Avx512;
    if (cpu_runs(SpmmKernel::Avx2)) return SpmmKernel::Avx2;
    return SpmmKernel::Libtorch;
  }();
  return chosen;
}

const char *kernel_name(SpmmKernel kernel) {
  switch (kernel) {
    case SpmmKernel::Avx512: return "avx512";
    case SpmmKernel::Avx2: return "avx2";
    default: return "libtorch";
  }
}

#ifdef GNN_SOUP_X86_KERNELS
extern "C" {
// Rows r0 .. r1 of a CSR x dense product (spmm_rows.inc), one per instruction set and index type.
void gnn_soup_spmm_rows_avx512_i64(const int64_t *, const int64_t *, const float *, const float *, float *, int64_t, int64_t, int64_t);
void gnn_soup_spmm_rows_avx512_i32(const int32_t *, const int32_t *, const float *, const float *, float *, int64_t, int64_t, int64_t);
void gnn_soup_spmm_rows_avx2_i64(const int64_t *, const int64_t *, const float *, const float *, float *, int64_t, int64_t, int64_t);
void gnn_soup_spmm_rows_avx2_i32(const int32_t *, const int32_t *, const float *, const float *, float *, int64_t, int64_t, int64_t);
}

template <typename Index>
using RowsKernel = void (*)(const Index *, const Index *, const float *, const float *, float *, int64_t, int64_t, int64_t);

// out = a x for CSR `a` (its three parts) and a contiguous row-major `x` of `f` columns, the
// rows shared among libtorch's threads in parts of about equal numbers of entries (degrees are
// skewed on real graphs).
template <typename Index>
void csr_mm_rows(RowsKernel<Index> kernel, const Index *crow, const Index *col, const float *val, const float *x, float *out, int64_t rows, int64_t f) {
  const int64_t first = static_cast<int64_t>(crow[0]), nnz = static_cast<int64_t>(crow[rows]) - first;
  // The row where the k-th of `parts` shares of the entries begins.
  const auto cut = [&](int64_t k, int64_t parts) {
    const Index target = static_cast<Index>(first + nnz * k / parts);
    return static_cast<int64_t>(std::lower_bound(crow, crow + rows, target) - crow);
  };
  // Below about 32k multiply-adds a part, starting a thread costs more than it saves.
  const int64_t min_rows = std::max<int64_t>(1, rows * (32768 / std::max<int64_t>(f, 1)) / std::max<int64_t>(nnz, 1));
  split_among_threads(rows, min_rows, cut, [&](int64_t r0, int64_t r1) { kernel(crow, col, val, x, out, f, r0, r1); });
}
#endif

// Whether an own kernel may take these operands rather than libtorch's product.
bool own_kernel_applies(const at::Tensor &a, const at::Tensor &x) {
  return a.layout() == at::kSparseCsr && a.is_cpu() && a.scalar_type() == at::kFloat &&
         x.layout() == at::kStrided && x.is_cpu() && x.scalar_type() == at::kFloat && x.dim() == 2 && a.dim() == 2 &&
         a.size(1) == x.size(0) && a.crow_indices().scalar_type() == a.col_indices().scalar_type() &&
         (a.crow_indices().scalar_type() == at::kLong || a.crow_indices().scalar_type() == at::kInt);
}

// `out = a.mm(x)` written into `out` (rows of a, columns of x; contiguous) by `kernel`, an own
// one the CPU runs, for operands it applies to. Not differentiable.
void csr_mm_into(SpmmKernel kernel, const at::Tensor &a, const at::Tensor &x_in, at::Tensor &out) {
#ifdef GNN_SOUP_X86_KERNELS
  const auto x = x_in.contiguous();
  const auto values = a.values().contiguous();
  const auto crow = a.crow_indices().contiguous();
  const auto col = a.col_indices().contiguous();
  const int64_t rows = a.size(0), f = x.size(1);
  if (rows == 0 || f == 0) return;
  const bool wide = kernel == SpmmKernel::Avx512;
  if (crow.scalar_type() == at::kLong)
    csr_mm_rows<int64_t>(wide ? gnn_soup_spmm_rows_avx512_i64 : gnn_soup_spmm_rows_avx2_i64, crow.data_ptr<int64_t>(), col.data_ptr<int64_t>(),
                         values.data_ptr<float>(), x.data_ptr<float>(), out.data_ptr<float>(), rows, f);
  else
    csr_mm_rows<int32_t>(wide ? gnn_soup_spmm_rows_avx512_i32 : gnn_soup_spmm_rows_avx2_i32, crow.data_ptr<int32_t>(), col.data_ptr<int32_t>(),
                         values.data_ptr<float>(), x.data_ptr<float>(), out.data_ptr<float>(), rows, f);
#else
  (void)kernel;
  at::mm_out(out, a, x_in);
#endif
}

// `a.mm(x)` by `kernel` where it applies, by libtorch's product otherwise.
at::Tensor csr_mm(const at::Tensor &a, const at::Tensor &x, SpmmKernel kernel = chosen_kernel()) {
  if (kernel == SpmmKernel::Libtorch || !own_kernel_applies(a, x)) return a.mm(x);
  auto out = at::empty({a.size(0), x.size(1)}, x.options().memory_format(at::MemoryFormat::Contiguous));
  csr_mm_into(kernel, a, x, out);
  return out;
}

struct SpmmGivenTranspose : public torch::autograd::Function<SpmmGivenTranspose> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &a, const at::Tensor &a_t, const at::Tensor &x) {
    ctx->saved_data["a_t"] = a_t;
    return csr_mm(a, x);
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    auto a_t = ctx->saved_data["a_t"].toTensor();
    // A gradient that is itself differentiated (create_graph) takes libtorch's product.
    if (at::GradMode::is_enabled() && grads[0].requires_grad()) return {at::Tensor(), at::Tensor(), a_t.mm(grads[0])};
    return {at::Tensor(), at::Tensor(), csr_mm(a_t, grads[0])};
  }
};

// `x * mask * scale` for a float CPU tensor and a byte mask of 0s and 1s of the same shape, in
// one pass over the three (libtorch would promote the byte mask to float first).
at::Tensor masked_scale(const at::Tensor &x, const at::Tensor &mask, double scale) {
  TORCH_CHECK(x.scalar_type() == at::kFloat && mask.scalar_type() == at::kByte && x.sizes() == mask.sizes() && x.is_cpu() && mask.is_cpu(),
              "masked dropout takes a float CPU tensor and a byte mask of its shape");
  auto in = x.contiguous();
  auto keep = mask.contiguous();
  auto out = at::empty_like(in, at::MemoryFormat::Contiguous);
  const float *src = in.data_ptr<float>();
  const uint8_t *m = keep.data_ptr<uint8_t>();
  float *dst = out.data_ptr<float>();
  const float s = static_cast<float>(scale);
  const int64_t n = in.numel();
  split_among_threads(
      n, 1 << 18, [&](int64_t k, int64_t parts) { return even_cut(n, k, parts); },
      [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) dst[i] = src[i] * (s * static_cast<float>(m[i]));
      });
  return out;
}

// Dropout given its mask: autograd keeps the byte mask (a quarter of a float one) for the
// backward pass, which applies the same mask and scale to the gradient.
struct MaskedDropout : public torch::autograd::Function<MaskedDropout> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &x, const at::Tensor &mask, double scale) {
    ctx->saved_data["mask"] = mask;
    ctx->saved_data["scale"] = scale;
    return masked_scale(x, mask, scale);
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    auto mask = ctx->saved_data["mask"].toTensor();
    auto scale = ctx->saved_data["scale"].toDouble();
    return {masked_scale(grads[0], mask, scale), at::Tensor(), at::Tensor()};
  }
};

thread_local std::string last_error;

}  // namespace

extern "C" {

// A new tensor `a.mm(x)` (differentiable in `x`, the gradient being `a_t.mm(grad)`), or null
// with the message in gnn_soup_last_error().
at::Tensor *gnn_soup_spmm(const at::Tensor *a, const at::Tensor *a_t, const at::Tensor *x) {
  try {
    return new at::Tensor(SpmmGivenTranspose::apply(*a, *a_t, *x));
  } catch (const std::exception &e) {
    last_error = e.what();
    return nullptr;
  }
}

// A new tensor `x * mask * scale` (differentiable in `x`), or null with the message in
// gnn_soup_last_error().
at::Tensor *gnn_soup_masked_dropout(const at::Tensor *x, const at::Tensor *mask, double scale) {
  try {
    return new at::Tensor(MaskedDropout::apply(*x, *mask, scale));
  } catch (const std::exception &e) {
    last_error = e.what();
    return nullptr;
  }
}

// A new tensor `a.mm(x)` for a CSR `a`, through the own kernel where it applies (not
// differentiable: where `x` needs a gradient, libtorch's product is recorded instead), or null
// with the message in gnn_soup_last_error().
at::Tensor *gnn_soup_csr_mm(const at::Tensor *a, const at::Tensor *x) {
  try {
    if (x->requires_grad() && at::GradMode::is_enabled()) return new at::Tensor(a->mm(*x));
    return new at::Tensor(csr_mm(*a, *x));
  } catch (const std::exception &e) {
    last_error = e.what();
    return nullptr;
  }
}

// `a.mm(x)` written into `out` (a contiguous float tensor of the product's shape, for instance
// a block of rows of a larger output); 0, or -1 with the message in gnn_soup_last_error().
int gnn_soup_csr_mm_out(const at::Tensor *a, const at::Tensor *x, const at::Tensor *out_handle) {
  try {
    at::Tensor out = *out_handle;  // the same storage: the product is written into it
    TORCH_CHECK(out.sizes() == at::IntArrayRef({a->size(0), x->size(1)}) && out.is_contiguous(),
                "the output of a sparse product must be a contiguous tensor of its shape");
    if (chosen_kernel() != SpmmKernel::Libtorch && own_kernel_applies(*a, *x) && out.scalar_type() == at::kFloat && out.is_cpu())
      csr_mm_into(chosen_kernel(), *a, *x, out);
    else
      at::mm_out(out, *a, *x);
    return 0;
  } catch (const std::exception &e) {
    last_error = e.what();
    return -1;
  }
}

// The sparse product's kernel on this CPU: "avx512", "avx2" or "libtorch".
const char *gnn_soup_spmm_kernel() { return kernel_name(chosen_kernel()); }

// `a.mm(x)` (not differentiable) by the kernel named (as gnn_soup_spmm_kernel names them), for
// tests comparing the kernels; null with the message in gnn_soup_last_error() for a kernel this
// CPU lacks.
at::Tensor *gnn_soup_csr_mm_by(const at::Tensor *a, const at::Tensor *x, const char *name) {
  try {
    for (auto kernel : {SpmmKernel::Libtorch, SpmmKernel::Avx2, SpmmKernel::Avx512}) {
      if (std::string(name) != kernel_name(kernel)) continue;
      TORCH_CHECK(cpu_runs(kernel), "this CPU does not run the ", name, " kernel");
      return new at::Tensor(csr_mm(*a, *x, kernel));
    }
    TORCH_CHECK(false, "no sparse product kernel is named ", name);
  } catch (const std::exception &e) {
    last_error = e.what();
    return nullptr;
  }
}

const char *gnn_soup_last_error() { return last_error.c_str(); }
}
