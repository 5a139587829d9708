"""What every part of the job schema shares: frozen strict models, the identifier rules, the project root, and the
folders a job's outputs may not go to."""

from __future__ import annotations

import os
import re
import sysconfig
from datetime import date
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic import Strict as StrictFlag

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
MONTH_DAY = re.compile(r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")


class Strict(BaseModel):
    """No type coercion (`horizon: true` is not 1, `"3"` is not 3) and no NaN or infinity in any number."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def _date_or_text(value: Any) -> Any:
    if isinstance(value, bool | int | float):
        raise ValueError("a date must be written YYYY-MM-DD")
    return value


# A date: a YAML date, or its ISO text (JSON job specs and Prefect parameters carry dates as text); never a number.
Day = Annotated[date, StrictFlag(False), BeforeValidator(_date_or_text)]


def project_root() -> Path:
    """The project home: the folder holding data/ (bundled data and jobs), sql/ and prefect.yaml. FORECASTING_HOME
    names it; by default it is the source checkout the package was installed from (pip install -e)."""
    env = os.environ.get("FORECASTING_HOME")
    return Path(env).resolve() if env else Path(__file__).resolve().parents[2]


# Folders of the operating system a run must never write into, replace links in or remove from.
SYSTEM_FOLDERS = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
    "/var/lib",
    "/var/run",
)


def package_dir() -> Path:
    """The installed `forecasting` package: its code, never a place for outputs."""
    return Path(__file__).resolve().parents[1]


def output_root_problem(root: Path) -> str | None:
    """Why `root` (absolute) cannot hold a job's outputs, or None. Called on the written path by the schema and on
    the path resolved through its links before anything is written (forecasting.outputs.confine)."""
    text = os.path.normpath(str(root))
    if text == "/":
        return "the file system's root"
    for folder in SYSTEM_FOLDERS:
        if text == folder or text.startswith(folder + "/"):
            return f"a system folder ({folder})"
    package = os.path.normpath(str(package_dir()))
    if text == package or text.startswith(package + "/"):
        return f"inside the installed package ({package})"
    for name in ("purelib", "platlib"):
        installed = os.path.normpath(sysconfig.get_paths()[name])
        if text == installed or text.startswith(installed + "/"):
            return f"inside the installed packages ({installed})"
    return None


def default_output_root() -> Path:
    """Where a job's outputs go when neither the job nor the command line says: data/outputs under the project
    home, unless that lies inside an installation (a plain `pip install` without FORECASTING_HOME): then
    $XDG_DATA_HOME/forecasting/outputs (~/.local/share/forecasting/outputs). Never inside the installed package."""
    home = project_root() / "data" / "outputs"
    if output_root_problem(home) is None:
        return home
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "forecasting" / "outputs"
