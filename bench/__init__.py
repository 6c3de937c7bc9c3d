"""tclisten benchmarks: run ``python bench/run.py`` (see run.py); results in RESULTS.md."""
