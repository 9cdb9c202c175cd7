"""A scoring script to stop in with a debugger (tests/integration/debugging.rs).

The tests put a breakpoint on the line marked `# breakpoint` and look for the
request's data in the local `request_data`.
"""


def init():
    pass


def run(data):
    request_data = data
    return {"echo": request_data}  # breakpoint
