"""`python -m murmur` is `murmur`."""

import sys

from murmur.cli import main

sys.exit(main())
