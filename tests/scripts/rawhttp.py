# @rawhttp, written to run with and without Flask installed: run() reads the request
# through Flask's API and answers with AMLResponse. ?mode= picks the behaviour.
import json
import sys

from azureml.contrib.services.aml_request import rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    mode = request.args.get("mode", "describe")
    if mode == "describe":
        return {
            "flask_loaded": "flask" in sys.modules,
            "request_class_module": type(request).__module__,
            "method": request.method,
            "path": request.path,
            "full_path": request.full_path,
            "url": request.url,
            "args": request.args.getlist("k"),
            "first_k": request.args.get("k"),
            "missing": request.args.get("nope", "default"),
            "header_any_case": request.headers.get("x-cUsToM"),
            "content_type": request.content_type,
            "mimetype": request.mimetype,
            "is_json": request.is_json,
            "data": request.get_data(as_text=True),
            "json": request.get_json(silent=True),
        }
    if mode == "json":
        return {"json": request.json, "get_json": request.get_json()}
    if mode == "form":
        upload = request.files.get("upload")
        return {
            "form": request.form.get("field"),
            "file_name": upload.filename if upload else None,
            "file_bytes": list(upload.read()) if upload else None,
        }
    if mode == "echo_bytes":
        return AMLResponse(request.get_data(), 200, {"Content-Type": "application/octet-stream"})
    if mode == "all_bytes":
        return AMLResponse(bytes(range(256)) * 4, 200, {"Content-Type": "application/octet-stream"})
    if mode == "headers":
        return AMLResponse("with headers", 201, {"Content-Type": "text/csv", "X-Split": "a, b", "X-One": "one"})
    if mode == "fail":
        return AMLResponse(json.dumps({"error": "from run"}), 503, {"Content-Type": "application/json"})
    raise ValueError("unknown mode " + mode)
