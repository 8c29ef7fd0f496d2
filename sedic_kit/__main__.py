"""``python -m sedic_kit``: the CLI."""

import sys

from .cli import main

sys.exit(main())
