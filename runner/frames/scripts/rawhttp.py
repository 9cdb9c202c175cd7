# Frames fixture: @rawhttp run() reading the request through Flask's request API.
from azureml.contrib.services.aml_request import rawhttp


def init():
    pass


@rawhttp
def run(request):
    return {
        "method": request.method,
        "path": request.path,
        "full_path": request.full_path,
        "args": request.args.to_dict(flat=False),
        "x_custom": request.headers.get("x-custom"),
        "content_type": request.content_type,
        "is_json": request.is_json,
        "data": request.get_data(as_text=True),
        "json": request.get_json(silent=True),
        "form": request.form.to_dict(flat=False),
    }
