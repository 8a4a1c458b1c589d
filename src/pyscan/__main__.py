"""``python -m pyscan``: the pyscan command."""

import sys

from pyscan.cli import main

sys.exit(main())
