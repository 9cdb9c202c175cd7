# Frames fixture: print() and logging in init(), including an exception record.
import logging
import sys

logger = logging.getLogger("fixture")


def init():
    print("two\nlines", "in one print")
    sys.stdout.write("written ")
    sys.stdout.write("in pieces\n")
    logger.debug("not sent: below INFO")
    logger.warning("a warning with %s", "arguments")
    try:
        raise ValueError("caught on purpose")
    except ValueError:
        logger.exception("with an exception")


def run(data):
    return data
