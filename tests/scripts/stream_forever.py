# A streamed answer that never ends unless stopped: run() returns an AMLResponse over a
# generator of 64 KiB chunks; the generator's `finally` writes the file named in the
# body ({"marker": path}), so a test sees when the generator was closed. A body without
# "marker" gets a plain JSON answer.
import json

from azureml.contrib.services.aml_response import AMLResponse

CHUNK = b"z" * 65536


def init():
    pass


def forever(marker):
    try:
        while True:
            yield CHUNK
    finally:
        with open(marker, "w") as done:
            done.write("closed")


def run(raw):
    request = json.loads(raw or "{}")
    if "marker" in request:
        return AMLResponse(forever(request["marker"]), 200, {"Content-Type": "application/octet-stream"})
    return {"streaming": False}
