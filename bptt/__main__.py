"""``python -m bptt``: the command line (see :mod:`bptt.app.cli`)."""

import sys

from bptt.app.cli import main

if __name__ == "__main__":
    sys.exit(main())
