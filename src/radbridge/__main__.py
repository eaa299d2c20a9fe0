"""``python -m radbridge``."""

import sys

from radbridge.cli import main

sys.exit(main())
