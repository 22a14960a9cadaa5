# The README's two commands are `make demo` and `make test`; both set up what is missing first.
.PHONY: setup demo test bench

setup:
	@scripts/setup.sh

demo: setup
	cargo run --release --bin gnn-soup --

test: setup
	cargo test -- --test-threads=1

bench: setup
	scripts/bench.sh
