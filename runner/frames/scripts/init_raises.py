# Frames fixture: init() raises.
def init():
    raise RuntimeError("fixture init failure")


def run(data):
    return data
