# No init(): a start-up error naming it.
def run(data):
    return data
