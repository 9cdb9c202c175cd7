# init() raises with a 2 MB message: the `init` error frame's JSON line is far over
# the 1 MiB that used to be the line limit (issue 9, defect 1).
def init():
    raise ValueError("x" * 2_000_000)


def run(data):
    return data
