"""The threshold-quality benchmark behind ``python benches/quality.py``.

Modules: ``data`` (the real data sets and how each is split), ``detectors`` (the
anomaly scores), ``thresholders`` (every rule judged on those scores), ``runner``
(caching and time-limited workers) and ``report`` (``docs/benchmarks.md``).
"""
