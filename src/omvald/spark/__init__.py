"""The Spark engine: the same per-bucket feature and scoring functions, one Spark task per bucket.

Import the submodules (``omvald.spark.session``, ``.features``, ``.scoring``);
pyspark is an optional dependency (``pip install -e '.[spark]'``).
"""
