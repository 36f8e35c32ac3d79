"""``python -m ltrend``: the same as the ``ltrend`` command."""

import sys

from ltrend.cli import main

sys.exit(main())
