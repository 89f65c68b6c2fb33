"""`python -m margin_maintenance.client`: the `mm-client` command line."""

import sys

from .cli import main

sys.exit(main())
