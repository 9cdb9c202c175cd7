"""Echo scoring script for the 1 MB body point: parse the JSON body and
return it, so the server has to JSON-encode it again on the way out."""
import json


def init():
    pass


def run(data):
    return json.loads(data)
