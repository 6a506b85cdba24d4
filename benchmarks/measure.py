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


def run_sampled(cmd: list[str], **popen) -> tuple[subprocess.CompletedProcess, int]:
    """Run ``cmd`` to the end (stdout and stderr captured as text); returns it and the peak tree RSS in bytes."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)
    ps, peak, done = psutil.Process(proc.pid), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            with contextlib.suppress(psutil.Error):
                peak[0] = max(peak[0], tree_rss(ps))
            time.sleep(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    done.set()
    sampler.join()
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr), peak[0]
