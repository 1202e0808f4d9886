"""`make bench`: the benchmark harness (see bench/run.py). Not part of the product packages."""
