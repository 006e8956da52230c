"""Shared test helpers. Tests run on CPU, offline, with fixed seeds."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Helper modules beside the tests (server_helpers) import by name; importlib mode does
# not put this folder on sys.path by itself.
sys.path.insert(0, str(Path(__file__).parent))

# Nothing in the test suite may reach the network or auto-install packages.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
