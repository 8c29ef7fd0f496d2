"""``python -m sedic_kit`` (e.g. under ``accelerate launch -m sedic_kit compare ...``)."""

import sys

from .cli import main

sys.exit(main())
