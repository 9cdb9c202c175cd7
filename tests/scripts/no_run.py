# No run(): a start-up error naming it.
def init():
    pass
