"""Benchmarks: `make bench` runs every `bench_*` function in the `bench/` modules."""
