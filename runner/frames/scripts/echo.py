# Frames fixture: an undecorated run() that echoes what it received.
def init():
    print("init called")


def run(data):
    print("run got", data)
    return {"received": data}
