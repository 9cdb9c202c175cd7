# init() takes 2 s: what the routes answer meanwhile.
import time


def init():
    time.sleep(2)


def run(data):
    return {'ok': True}
