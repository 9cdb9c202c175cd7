# Frames fixture: run() fails in the way the JSON body's "mode" asks for.
import json
import time

from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


def run(raw):
    mode = json.loads(raw).get("mode")
    if mode == "raise":
        raise RuntimeError("run() failed on purpose")
    if mode == "set":
        return {1, 2, 3}
    if mode == "sleep":
        time.sleep(5)
    if mode == "aml500":
        return AMLResponse("model failure", 500, {"X-Parts": "a, b"})
    if mode == "exit":
        raise SystemExit(2)
    return None
