"""The errors a user can act on. Every stage raises a subclass of InputError for input it refuses (the job file, the
data, the labour standards, a command-line value, a file of the user's where the outputs belong); the CLI prints it
as one line naming the stage and exits 2. Anything else is a fault of the program: exit 1, traceback in a log."""

from __future__ import annotations

from concurrent.futures import BrokenExecutor


class InputError(ValueError):
    """Input the user can fix. `stage` is filled in by the stage that met it (forecasting.stage_log)."""

    stage: str | None = None


class MethodError(InputError):
    """A model or reconciliation method failed on this data; the message names the method and the series."""


# What a failing model or method may raise that is not about the data: ours already, the machine's (memory, a
# disk, a worker process killed from outside). Never turned into a MethodError.
NOT_THE_DATA: tuple[type[BaseException], ...] = (InputError, OSError, MemoryError, BrokenExecutor)


def one_line(text: str) -> str:
    """A message as one line: the CLI prints one line per failure, whatever a library put in its text."""
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())
