# Frames fixture: run() asking for request_headers next to its input.
def init():
    pass


def run(data, request_headers):
    return {"data": data, "request_headers": request_headers}
