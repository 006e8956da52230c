"""``python -m cv.cli`` runs the ``customs-vision`` command."""

import sys

from cv.cli import main

sys.exit(main())
