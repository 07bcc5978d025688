"""`python -m cds_service ...` runs the same CLI as the `b12-cds` console script."""

import sys

from .cli import main

sys.exit(main())
