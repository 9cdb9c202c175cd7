# A run() signature the server cannot call: a start-up error.
def init():
    pass


def run(request_headers):
    return 1
