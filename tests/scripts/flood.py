"""Prints as fast as it can: `run()` prints the number of lines the request body asks
for, each `LINE_BYTES` long, then answers how many it printed (the log flood test)."""

LINE_BYTES = 64 * 1024


def init():
    pass


def run(data):
    lines = int(data)
    line = "F" * LINE_BYTES
    for _ in range(lines):
        print(line)
    return {"printed": lines}
