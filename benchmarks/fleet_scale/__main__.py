"""`python -m benchmarks.fleet_scale`: the section's instrumented Delivery service."""

import sys

from benchmarks.fleet_scale.delivery import main

sys.exit(main())
