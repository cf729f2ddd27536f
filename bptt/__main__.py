"""``python -m bptt``: the command line (see :mod:`bptt.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
