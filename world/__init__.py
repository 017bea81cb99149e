"""The simulated world and the local system: one builder of each.

`world.fleet` builds a simulated fleet (vehicles, flight controllers, agents); `world.system`
builds broker, services and fleet in one process; `world.requests` generates the requests a
fleet can serve. `murmur up`, `murmur sim`, `murmur agent --fc sim`, the benchmarks, the chaos
run and the tests all build their world here, so they fly and time it the same way.
"""
