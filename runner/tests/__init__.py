"""The runner's tests: `python3 -m unittest discover -s runner/tests -t runner` from the repo root."""
