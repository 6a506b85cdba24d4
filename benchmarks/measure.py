"""Run a benchmark child process and sample the memory of it and all its descendants.

``ru_maxrss`` only sees one process; a stage with bucket workers (or Spark,
with its JVM and Python workers) spreads its memory over several, and what
the machine must hold is their sum at the worst moment.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time

import psutil

SAMPLE_SECONDS = 0.2


def tree_rss(proc: psutil.Process) -> int:
    """Bytes resident in ``proc`` and all its descendants right now."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # a worker may exit between listing and reading
            total += p.memory_info().rss
    return total


def role(proc: psutil.Process, root: psutil.Process) -> str:
    """``driver`` (the measured process), ``jvm`` (Spark's Java) or ``workers`` (bucket or Spark Python workers)."""
    if proc.pid == root.pid:
        return "driver"
    return "jvm" if "java" in proc.name() else "workers"


def tree_rss_by_role(root: psutil.Process) -> dict[str, int]:
    """Bytes resident right now in ``root`` and its descendants, summed per :func:`role`."""
    totals: dict[str, int] = {}
    for p in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            kind = role(p, root)
            totals[kind] = totals.get(kind, 0) + p.memory_info().rss
    return totals


def run_sampled(
    cmd: list[str], roles: dict[str, int] | None = None, **popen
) -> tuple[subprocess.CompletedProcess, int]:
    """Run ``cmd`` to the end (stdout and stderr captured as text); returns it and the peak tree RSS in bytes.

    ``roles``, if given, is filled with each role's own peak (bytes; :func:`role`): the
    roles peak at different moments, so they add up to more than the tree's peak.
    """
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    ps, peak, done = psutil.Process(proc.pid), [0], threading.Event()
    role_peaks = roles if roles is not None else {}

    def sample() -> None:
        while not done.is_set():
            with contextlib.suppress(psutil.Error):
                now = tree_rss_by_role(ps)
                peak[0] = max(peak[0], sum(now.values()))
                for kind, rss in now.items():
                    role_peaks[kind] = max(role_peaks.get(kind, 0), rss)
            time.sleep(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    done.set()
    sampler.join()
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr), peak[0]
