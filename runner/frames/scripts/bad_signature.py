# Frames fixture: run(*args) is refused.
def init():
    pass


def run(*args):
    return args
