"""``python -m tinygrad_nn``: the same command line as ``tinygrad-nn``."""

import sys

from .cli import main

sys.exit(main())
