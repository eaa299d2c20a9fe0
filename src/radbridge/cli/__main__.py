"""``python -m radbridge.cli``."""

import sys

from radbridge.cli import main

sys.exit(main())
