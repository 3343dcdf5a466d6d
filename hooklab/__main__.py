"""`python -m hooklab`: the hooklab command line."""

from __future__ import annotations

import sys

from hooklab.cli import main

if __name__ == "__main__":
    sys.exit(main())
