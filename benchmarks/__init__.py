"""Benchmarks: `murmur bench` (`benchmarks.harness`) and the scripts it runs, with their results.

Each section measures one thing against a broker; `benchmarks.raw` is the baseline the others
are compared with, run on the same broker in the same run. `benchmarks.storm` (`scripts/storm`)
is apart: a burst of requests into the services, and what it costs them in memory.
"""
