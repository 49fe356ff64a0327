"""Progress events that long jobs hand to their caller, and the stop-callback type they accept.

Long jobs never print: they call ``on_progress(Progress(...))`` (CLI turns it into a bar, GUI into a signal)
and poll ``should_stop()`` between units of work, raising :class:`~denoiser.errors.Cancelled` when it is True.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from denoiser.errors import Cancelled

StopFn = Callable[[], bool]


@dataclass(frozen=True)
class Progress:
    """One progress report: ``done`` units of ``total`` in the stage named ``stage``."""

    stage: str
    done: int
    total: int
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        """Share of the work done, 0 to 1 (1 when the total is unknown or zero)."""
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)


ProgressFn = Callable[[Progress], None]


def ignore_progress(_: Progress) -> None:
    """A ``ProgressFn`` that drops every report."""


def check_stop(should_stop: StopFn | None, what: str = "cancelled") -> None:
    """Raise :class:`Cancelled` if ``should_stop`` says so."""
    if should_stop is not None and should_stop():
        raise Cancelled(what)
