# The score script behind driver.py.


def init():
    print("TARGET-INIT-RAN")


def run(data):
    return {"from": "target", "data": data}
