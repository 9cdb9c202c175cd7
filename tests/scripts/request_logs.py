# Says something on every channel a script has, for the JSON log tests: print() and a
# logging record in init() and run(), and a line on stderr in run().
import logging
import sys


def init():
    print("INIT-PRINT")


def run(raw):
    print("RUN-PRINT")
    logging.getLogger("script.logger").warning("RUN-WARNING")
    sys.stderr.write("RUN-STDERR\n")
    sys.stderr.flush()
    return {"ok": True}
