"""Benchmarks: `murmur bench` (`benchmarks.harness`) and the scripts it runs, with their results.

Each section measures one thing against a broker; `benchmarks.raw` is the baseline the others
are compared with, run on the same broker in the same run.
"""
