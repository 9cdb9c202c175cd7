# Streaming: run() returns an AMLResponse whose body is a generator. Each piece goes to
# the client as soon as it is produced (chunked transfer encoding), so a client sees
# the first tokens of a long answer early.
#
#   curl -N "127.0.0.1:5001/score?count=5"
import json
import time

from azureml.contrib.services.aml_request import rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    count = int(request.args.get("count", "3"))

    def tokens():
        for index in range(count):
            if index:
                time.sleep(0.2)  # a model producing its next token
            yield json.dumps({"token": index}) + "\n"

    return AMLResponse(tokens(), 200, {"Content-Type": "application/x-ndjson"})
