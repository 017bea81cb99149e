"""`python -m benchmarks.choreography`: the rig's worker processes (`workers.main`)."""

from benchmarks.choreography.workers import main

main()
