"""`python -m hooklab.server`: the same program as `hooklab serve`."""

from __future__ import annotations

import sys

from hooklab.server.serve import main

if __name__ == "__main__":
    sys.exit(main())
