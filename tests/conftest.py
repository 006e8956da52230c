"""Shared test helpers. Tests run on CPU, offline, with fixed seeds."""

from __future__ import annotations

import os

# Nothing in the test suite may reach the network or auto-install packages.
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
