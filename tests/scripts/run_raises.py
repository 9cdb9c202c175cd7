"""run() fails as the input asks: `{"fail": "ValueError"}` raises in a helper,
`{"sleep": N}` overstays the scoring timeout. The tests read the marked lines."""

import json
import time


def init():
    pass


def check(data):
    if "fail" in data:
        raise ValueError("the input asked for {}".format(data["fail"]))  # raises
    if "sleep" in data:
        time.sleep(data["sleep"])  # sleeps
    return data


def run(raw):
    return check(json.loads(raw))
