"""What every part of the job schema shares: frozen strict models, the identifier rules, the project root."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MONTH_DAY = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def project_root() -> Path:
    """The folder holding data/, sql/ and prefect.yaml (override with FORECASTING_HOME)."""
    env = os.environ.get("FORECASTING_HOME")
    return Path(env).resolve() if env else Path(__file__).resolve().parents[2]
