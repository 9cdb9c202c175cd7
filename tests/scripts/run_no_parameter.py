# A run() signature the server cannot call: a start-up error.
def init():
    pass


def run():
    return 1
