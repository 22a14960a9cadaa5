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
#include <atomic>
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

// Entries `begin .. end` of `x * mask * s`. The loops of the helpers below are plain functions
// of restrict pointers and values so that the compiler vectorises them: written inside a lambda,
// every reference it captures might alias the stores, and the loops ran one float at a time.
void scale_by_mask(const float *__restrict x, const uint8_t *__restrict m, float *__restrict out, int64_t begin, int64_t end, float s) {
  for (int64_t i = begin; i < end; ++i) out[i] = x[i] * (s * static_cast<float>(m[i]));
}

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
      [&](int64_t begin, int64_t end) { scale_by_mask(src, m, dst, begin, end, s); });
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

// The rows `r0 .. r1` of BiasReluDropout's forward pass (`m` may be null: no dropout).
void bias_relu_rows(const float *__restrict z, const float *__restrict b, const uint8_t *__restrict m, float *__restrict y, int64_t r0, int64_t r1,
                    int64_t f, float s) {
  for (int64_t i = r0; i < r1; ++i) {
    const float *__restrict zr = z + i * f;
    float *__restrict yr = y + i * f;
    for (int64_t j = 0; j < f; ++j) {
      const float v = zr[j] + b[j];
      yr[j] = v < 0.0f ? 0.0f : v;  // NaN stays NaN, as in torch's ReLU
    }
    if (m) {
      const uint8_t *__restrict mr = m + i * f;
      for (int64_t j = 0; j < f; ++j) yr[j] = yr[j] * (s * static_cast<float>(mr[j]));
    }
  }
}

// The rows `r0 .. r1` of its backward pass: `gz = g * s` where `y > 0`, else 0, with the column
// sums of `gz` added to `sum` (64 rows at a time in floats, each block added in doubles).
void relu_gradient_rows(const float *__restrict y, const float *__restrict g, float *__restrict gz, double *__restrict sum, int64_t r0, int64_t r1,
                        int64_t f, float s) {
  std::vector<float> block(static_cast<size_t>(f));
  float *__restrict acc = block.data();
  for (int64_t i0 = r0; i0 < r1; i0 += 64) {
    std::fill(block.begin(), block.end(), 0.0f);
    for (int64_t i = i0; i < std::min(r1, i0 + 64); ++i) {
      const float *__restrict yr = y + i * f;
      const float *__restrict gr = g + i * f;
      float *__restrict zr = gz + i * f;
      for (int64_t j = 0; j < f; ++j) {
        const float keep = yr[j] <= 0.0f ? 0.0f : s;  // a select, not a branch: it vectorises (NaN passes, as in torch)
        const float v = gr[j] * keep;
        zr[j] = v;
        acc[j] += v;
      }
    }
    for (int64_t j = 0; j < f; ++j) sum[j] += acc[j];
  }
}

// A hidden layer's end in one pass: `y = relu(z + b)`, times `scale * mask` where a dropout mask
// (bytes of 0s and 1s) is given for the next layer's input. Only `y` is kept for the backward
// pass: an entry passes its gradient exactly where `y > 0` (the ReLU was active and the entry
// kept), scaled by the dropout's `scale`. Separately, the bias add, the ReLU (which keeps its
// output) and the dropout (which keeps its mask and makes a new output) took three passes
// forward and three backward (the bias's gradient a fourth).
struct BiasReluDropout : public torch::autograd::Function<BiasReluDropout> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &z_in, const at::Tensor &b_in, const at::Tensor &mask_in, double scale) {
    TORCH_CHECK(z_in.scalar_type() == at::kFloat && z_in.is_cpu() && z_in.dim() == 2 && b_in.scalar_type() == at::kFloat && b_in.is_cpu() &&
                    b_in.dim() == 1 && b_in.size(0) == z_in.size(1),
                "bias, ReLU and dropout take a float CPU matrix and a bias of its width");
    const bool masked = mask_in.dim() == 2;  // no mask: a 1-D empty tensor
    TORCH_CHECK(!masked || (mask_in.scalar_type() == at::kByte && mask_in.sizes() == z_in.sizes()), "the dropout mask must be bytes of the input's shape");
    const auto z = z_in.contiguous();
    const auto b = b_in.contiguous();
    const auto mask = masked ? mask_in.contiguous() : at::Tensor();
    auto y = at::empty_like(z, at::MemoryFormat::Contiguous);
    const int64_t rows = z.size(0), f = z.size(1);
    const float *zp = z.data_ptr<float>(), *bp = b.data_ptr<float>();
    const uint8_t *mp = masked ? mask.data_ptr<uint8_t>() : nullptr;
    float *yp = y.data_ptr<float>();
    const float s = static_cast<float>(scale);
    split_among_threads(
        rows, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(f, 1)), [&](int64_t k, int64_t parts) { return even_cut(rows, k, parts); },
        [&](int64_t r0, int64_t r1) { bias_relu_rows(zp, bp, mp, yp, r0, r1, f, s); });
    ctx->save_for_backward({y});
    ctx->saved_data["scale"] = masked ? scale : 1.0;
    return y;
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    const auto y = ctx->get_saved_variables()[0];
    const double scale = ctx->saved_data["scale"].toDouble();
    if (at::GradMode::is_enabled() && grads[0].requires_grad()) {  // a gradient differentiated again
      auto gz = grads[0] * y.gt(0).to(grads[0].scalar_type()) * scale;
      return {gz, gz.sum(0), at::Tensor(), at::Tensor()};
    }
    const auto g = grads[0].contiguous();
    const int64_t rows = y.size(0), f = y.size(1);
    auto gz = at::empty_like(g, at::MemoryFormat::Contiguous);
    const float *yp = y.data_ptr<float>(), *gp = g.data_ptr<float>();
    float *zp = gz.data_ptr<float>();
    const float s = static_cast<float>(scale);
    // Each part of the rows sums its gradients per column in doubles into a slot of its own; the
    // slots are added after in the order of their rows, so that the sum does not depend on which
    // thread finished first.
    const int64_t threads = std::max<int64_t>(1, at::get_num_threads());
    std::vector<double> partial(static_cast<size_t>(threads * f), 0.0);
    std::vector<int64_t> first_row(static_cast<size_t>(threads), rows);
    std::atomic<int64_t> next_part{0};
    split_among_threads(
        rows, std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(f, 1)), [&](int64_t k, int64_t parts) { return even_cut(rows, k, parts); },
        [&](int64_t r0, int64_t r1) {
          const int64_t slot = next_part.fetch_add(1);
          first_row[static_cast<size_t>(slot)] = r0;
          relu_gradient_rows(yp, gp, zp, partial.data() + slot * f, r0, r1, f, s);
        });
    std::vector<int64_t> order(static_cast<size_t>(threads));
    for (int64_t t = 0; t < threads; ++t) order[static_cast<size_t>(t)] = t;
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return first_row[static_cast<size_t>(a)] < first_row[static_cast<size_t>(b)]; });
    auto gb = at::empty({f}, g.options());
    float *bp = gb.data_ptr<float>();
    for (int64_t j = 0; j < f; ++j) {
      double total = 0.0;
      for (const int64_t t : order) total += partial[static_cast<size_t>(t * f + j)];
      bp[j] = static_cast<float>(total);
    }
    return {gz, gb, at::Tensor(), at::Tensor()};
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

// A new tensor `relu(z + b) * scale * mask` (without a mask: `relu(z + b)`), differentiable in
// `z` and `b`; `mask` may be null. Null with the message in gnn_soup_last_error().
at::Tensor *gnn_soup_bias_relu_dropout(const at::Tensor *z, const at::Tensor *b, const at::Tensor *mask, double scale) {
  try {
    // No mask: an empty one (autograd's apply takes no undefined tensor).
    return new at::Tensor(BiasReluDropout::apply(*z, *b, mask ? *mask : at::empty({0}, z->options().dtype(at::kByte)), scale));
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
