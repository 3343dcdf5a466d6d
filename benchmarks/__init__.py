"""hooklab's benchmarks: each `bench_*.py` prints its figures as ratios to a same-run baseline."""
