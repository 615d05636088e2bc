"""`python -m selfinstruct_assets.cli ...` runs the `selfinstruct` command."""

import sys

from selfinstruct_assets.cli import main

sys.exit(main())
