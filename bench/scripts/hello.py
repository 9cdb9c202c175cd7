"""Hello-world scoring script used for throughput and latency points.

init() sleeps 1 s like a model load would; it is not part of any timed figure
(start-up is timed with hello_noinit_sleep.py instead).
"""
import time


def init():
    time.sleep(1)


def run(data):
    return {"message": "Hello, World!"}
