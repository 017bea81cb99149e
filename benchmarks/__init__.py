"""Benchmarks: `murmur bench` (`benchmarks.harness`) and the scripts it runs, with their results.

Each section measures one thing against a broker; `benchmarks.raw` is the baseline the others
are compared with, run on the same broker in the same run. `benchmarks.storm` (`scripts/storm`)
is apart: a burst of requests into the services, and what it costs them in memory.

The sections: `raw`, `choreography/` (a rig of services and fleet, its throughput and latency),
`fleet_scale/` (fleets of growing size, and the Delivery service that records their lag) and
`storm/`. What they share: `instrument` (the client), `watch` (what the client sees),
`processes` (child processes and their JSON lines), `machine` (the machine, CPU and memory)
and `stats` (the quantile, the progress line); `plot` draws the results.
"""
