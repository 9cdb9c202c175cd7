"""For the Application Insights tests: prints in init() and run(), raises a
user-defined exception on request, can take its time or print many lines."""
import json
import logging
import time


class ModelBroke(Exception):
    pass


def init():
    print("AI-INIT-PRINT-7c1d")


def run(data):
    request = json.loads(data)
    print("AI-RUN-PRINT " + request.get("tag", ""))
    if request.get("trace"):
        logging.getLogger("azmlinfsrv.trace").info("AI-TRACE-RECORD %s", request["trace"])
    if request.get("fail"):
        raise ModelBroke("the model broke on " + request["fail"])
    if request.get("sleep"):
        time.sleep(request["sleep"])
    for index in range(request.get("prints", 0)):
        print("AI-FLOOD", index)
    return {"echo": request}
