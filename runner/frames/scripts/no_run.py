# Frames fixture: no run().
def init():
    pass
