# @rawhttp: run() receives the HTTP request itself and answers with an AMLResponse of
# any status, headers and body (text or binary). The request has Flask's API
# (method, args, headers, get_data(), get_json(), form, files); Flask need not be
# installed.
#
#   curl -s 127.0.0.1:5001/score
#   curl -s --data-binary @picture.png -H "Content-Type: image/png" "127.0.0.1:5001/score?reverse=1" -o reversed.bin
from azureml.contrib.services.aml_request import rawhttp
from azureml.contrib.services.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    if request.method == "GET":
        usage = "POST any body; it comes back as it is, or reversed with ?reverse=1.\n"
        return AMLResponse(usage, 200, {"Content-Type": "text/plain"})
    if request.method != "POST":
        return AMLResponse("Only GET and POST are supported.\n", 405, {"Content-Type": "text/plain"})
    body = request.get_data()
    if request.args.get("reverse") == "1":
        body = body[::-1]
    headers = {
        "Content-Type": request.content_type or "application/octet-stream",
        "X-Body-Length": str(len(body)),
    }
    return AMLResponse(body, 200, headers)
