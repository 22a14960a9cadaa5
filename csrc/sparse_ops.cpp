// Sparse x dense products whose backward pass multiplies by an operator given up front.
//
// libtorch differentiates `A.mm(X)` for a CSR matrix A by converting A's transpose to CSR on
// every backward pass: on the arxiv-shaped graph that conversion cost more than the product
// itself (0.34 s against 0.12 s). A graph's operators are fixed, so the transpose is built once
// (or is A itself, for the symmetric operators of an undirected graph) and handed in here.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cstring>
#include <exception>
#include <string>

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct SpmmGivenTranspose : public torch::autograd::Function<SpmmGivenTranspose> {
  static at::Tensor forward(AutogradContext *ctx, const at::Tensor &a, const at::Tensor &a_t, const at::Tensor &x) {
    ctx->saved_data["a_t"] = a_t;
    return a.mm(x);
  }

  static variable_list backward(AutogradContext *ctx, variable_list grads) {
    auto a_t = ctx->saved_data["a_t"].toTensor();
    return {at::Tensor(), at::Tensor(), a_t.mm(grads[0])};
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
  at::parallel_for(0, in.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
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

const char *gnn_soup_last_error() { return last_error.c_str(); }
}
