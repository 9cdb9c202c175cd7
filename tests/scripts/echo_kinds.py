# Reports what run() received, and misbehaves on request ({"mode": ...}).
import json
import os
import sys


def init():
    print("echo_kinds init done")


def run(data, request_headers):
    parsed = json.loads(data) if data.startswith("{") else {}
    mode = parsed.get("mode")
    if mode == "raise":
        raise ValueError("run() failed on purpose in echo_kinds.py")
    if mode == "unserialisable":
        return {"value": object()}
    if mode == "print":
        print("PRINTED-FROM-RUN", parsed.get("tag"))
        os.write(1, b"WRITTEN-TO-FD-1 " + parsed.get("tag", "").encode() + b"\n")
        sys.stdout.write("PARTIAL-LINE-")
        sys.stdout.write("COMPLETED\n")
        return {"printed": True}
    if mode == "python":
        return {"executable": sys.executable, "prefix": sys.prefix, "version": sys.version_info[:2]}
    return {
        "type": type(data).__name__,
        "data": data,
        "custom_header": request_headers.get("X-Custom"),
    }
