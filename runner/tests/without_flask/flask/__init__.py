"""Stands in for a missing flask: see tests/support.py, FLASK_HIDING_PATH."""

raise ImportError("No module named 'flask' (hidden by the runner tests)")
