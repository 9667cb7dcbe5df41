"""`python -m engine` runs the `tracehound` command."""

import sys

from .cli import main

sys.exit(main())
