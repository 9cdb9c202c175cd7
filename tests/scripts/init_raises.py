def init():
    raise RuntimeError("INIT-FAILED-FOR-TEST-41ab")


def run(data):
    return data
