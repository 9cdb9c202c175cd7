# @rawhttp: answers the client's address as the request object reports it.
from azureml.contrib.services.aml_request import rawhttp


def init():
    pass


@rawhttp
def run(request):
    return {"remote_addr": request.remote_addr}
