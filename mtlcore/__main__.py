"""``python -m mtlcore``: see mtlcore/cli/."""
import sys

from .cli import main

sys.exit(main())
