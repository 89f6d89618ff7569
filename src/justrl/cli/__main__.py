"""``python -m justrl.cli``."""

import sys

from justrl.cli import main

sys.exit(main())
