# The README's two commands are `make demo` and `make test`; both set up what is missing first.
.PHONY: setup demo test test-slurm bench microbench fidelity gpu-bundle

setup:
	@scripts/setup.sh

demo: setup
	cargo run --release --bin gnn-soup --

# Tests run in parallel, each in its own process, under cargo-nextest when it is installed
# (`cargo install cargo-nextest`); otherwise cargo's own runner, also in parallel.
# Then the benchmarks run once each, as tests (divan's test mode), so they cannot rot unseen.
test: setup
	@if cargo nextest --version >/dev/null 2>&1; then cargo nextest run --no-fail-fast; else cargo test --no-fail-fast; fi
	cargo test --bench core

# `gnn-soup slurm train` on a real one-node Slurm on loopback (needs root; installs Debian's
# slurm-wlm and munge with apt when missing): docs/training.md, "Slurm".
test-slurm: setup
	scripts/slurm-check.sh

# The hot paths on generated data (docs/performance.md, Microbenchmarks).
microbench: setup
	cargo bench --bench core

# gnn-soup and the reference approach side by side on the arxiv-shaped graph (docs/performance.md).
bench: setup
	scripts/bench-large.sh gcn
	scripts/bench-large.sh sage

# gnn-soup against a plain-PyTorch re-implementation of the paper's reference code, same files.
fidelity: setup
	scripts/fidelity.sh --seeds 5

# The GPU check for a machine with only python3 + torch 2.11 and a GPU: gnn-soup and the CUDA
# tests built here against PyPI's torch 2.11.0, with their runner, in target/gpu-bundle/bundle
# (at most 60 MiB; docs/gpu.md).
gpu-bundle:
	scripts/gpu-bundle.sh
