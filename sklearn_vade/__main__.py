"""``python -m sklearn_vade``: the same command line as ``sklearn-vade``."""

import sys

from ._cli import main

if __name__ == "__main__":
    sys.exit(main())
