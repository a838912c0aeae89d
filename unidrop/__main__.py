"""``python -m unidrop``: the same as the ``unidrop`` command."""

import sys

from .cli import main

sys.exit(main())
