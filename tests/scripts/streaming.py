# Streams its answer from a generator through AMLResponse: the first chunk leaves
# before run()'s generator has produced the last one. ?parts=N&pause=S; ?fail=1 raises
# half-way.
import time

from azureml.contrib.services.aml_request import rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    parts = int(request.args.get("parts", "3"))
    pause = float(request.args.get("pause", "0"))
    should_fail = request.args.get("fail") == "1"

    def body():
        for index in range(parts):
            if index:
                time.sleep(pause)
            if should_fail and index == parts // 2:
                raise RuntimeError("the body generator failed on purpose")
            yield "part {}\n".format(index)
        yield b"binary-tail:\x00\xff"

    return AMLResponse(body(), 200, {"Content-Type": "text/plain"})
