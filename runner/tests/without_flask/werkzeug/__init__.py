"""Stands in for a missing werkzeug: see tests/support.py, FLASK_HIDING_PATH."""

raise ImportError("No module named 'werkzeug' (hidden by the runner tests)")
