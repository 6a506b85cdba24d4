"""Seconds per phase of a scoring run, for the summary's ``timings_s`` and the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

Hook = Callable[[str], None]


@dataclass
class PhaseClock:
    """Seconds spent per phase (phases interleave across buckets, so time accumulates).

    ``on_phase(name)`` is called on every change of phase (the scoring
    benchmark samples memory per phase with it).
    """

    on_phase: Hook | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    _current: str | None = None
    _since: float = 0.0

    def enter(self, phase: str) -> None:
        """Close the current phase and start ``phase``."""
        now = time.perf_counter()
        if self._current is not None:
            self.seconds[self._current] = self.seconds.get(self._current, 0.0) + now - self._since
        self._current, self._since = phase, now
        if self.on_phase is not None:
            self.on_phase(phase)

    def stop(self) -> dict[str, float]:
        """Close the current phase; seconds per phase, rounded to ms."""
        self.enter("done")
        return {k: round(v, 3) for k, v in self.seconds.items()}
