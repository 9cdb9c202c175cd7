# Frames fixture: AMLResponse bodies produced by generators, one of them failing.
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


def numbers():
    for number in range(3):
        yield "chunk {}\n".format(number)


def broken():
    yield b"first chunk\n"
    raise RuntimeError("the body generator failed")


def run(data):
    if data == "broken":
        return AMLResponse(broken(), 200)
    return AMLResponse(numbers(), 200, {"Content-Type": "text/plain"})
