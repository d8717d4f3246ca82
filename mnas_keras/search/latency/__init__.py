"""Latency for the search: part keys, the lookup table, measuring parts, latency modes.

In dependency order (each imports only the ones above it; none imports TensorFlow on
import):

* :mod:`~mnas_keras.search.latency.parts`: part keys (stem, block, head at a resolution),
  the parts of a network or a space, the table's settings and errors.
* :mod:`~mnas_keras.search.latency.slice`: cutting a multi-branch ``.tflite`` into parts.
* :mod:`~mnas_keras.search.latency.build`: building, converting and timing parts and whole
  networks on LiteRT.
* :mod:`~mnas_keras.search.latency.table`: :class:`~mnas_keras.search.latency.table.LatencyTable`
  (part latencies, fitted correction, drift anchor, shared files).
* :mod:`~mnas_keras.search.latency.modes`: ``measured`` / ``predicted`` /
  ``predicted_then_measured`` and the table-backed latency source of the proxy evaluator.
* :mod:`~mnas_keras.search.latency.report`: a table's accuracy on held-out networks.
"""
