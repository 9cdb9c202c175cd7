# The quickstart scoring script: init() runs once per worker, run() once per request.
import time


def init():
    # Pretend to load a model.
    time.sleep(1)


def run(data):
    return {"message": "Hello, World!"}
