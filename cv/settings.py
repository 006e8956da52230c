"""Process-wide settings, read from ``CV_*`` environment variables or a ``.env`` file.

Only entry points (the CLI, the server) read settings; building blocks take
explicit arguments.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Settings shared by every command.

    Attributes:
        data_dir: Where generated and converted datasets go by default.
        runs_dir: Where training runs, reports and benchmarks go by default.
        workers: Worker processes for parallel work; 0 means one per CPU core.
        seed: Default random seed.
        log_level: Logging level name.
    """

    model_config = SettingsConfigDict(env_prefix="CV_", env_file=".env", extra="ignore")

    data_dir: Path = Path("data")
    runs_dir: Path = Path("runs")
    workers: int = Field(default=0, ge=0)
    seed: int = 0
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    def resolved_workers(self) -> int:
        """Number of worker processes to use (at least 1)."""
        return self.workers or max(1, os.cpu_count() or 1)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
