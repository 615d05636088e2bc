"""`python -m selfinstruct_assets.cli ...` runs the `selfinstruct` command."""

import sys

from . import main

sys.exit(main())
