"""`python -m omniconsole.cli`: the same as the `omniconsole` command."""

import sys

from omniconsole.cli import main

sys.exit(main())
