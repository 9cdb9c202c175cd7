"""Same as hello.py without the 1 s sleep in init(): used to time start-up
(process start to the first 200 on GET /) and for the plain-Python loop."""


def init():
    pass


def run(data):
    return {"message": "Hello, World!"}
