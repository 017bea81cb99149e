"""`python -m benchmarks.storm` (`scripts/storm`): storms on each broker, and their report."""

import sys

from benchmarks.storm.compare import main

sys.exit(main())
