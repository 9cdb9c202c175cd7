"""The azmlinfsrv runner: serves one user scoring script to the azmlinfsrv server.

The server starts `python runner.py` (the entry script beside this package) in the
user's own environment and talks to it over stdin/stdout with the protocol in
PROTOCOL.md (line-delimited JSON-RPC 2.0 with raw payloads). The runner loads the
script, runs init(), and answers `score` requests by calling run() exactly as the
reference server (azureml-inference-server-http 1.5.1) does. Standard library only;
CPython 3.8 and later.

Modules (each has one job):

- serve.py: takes over stdio, answers the protocol's requests;
- channel.py: reading and writing frames (and a `cancel` looked for while streaming);
- forking.py: a process forked from the runner drops the channel and never serves;
- logs.py: print() / sys.stdout / logging records sent as `log` notifications;
- deadline.py: the SIGALRM scoring timeout;
- errors.py: error answers, with the exception's type, message, traceback and location;
- contrib.py: the `azureml.contrib.services` modules scripts import, made of
  aml_request.py (`@rawhttp`) and aml_response.py (`AMLResponse`);
- script.py: importing the script, checking init()/run(), the input mode;
- inputs.py: a request turned into run()'s arguments;
- http.py, datastructures.py: Flask-like request/response objects for environments
  without Flask;
- outputs.py: run()'s return value turned into status, headers and body.

The package's name is private (a leading underscore, our product's name) so that it
never collides with a user module on sys.path; its modules use plain names and import
each other relatively.
"""
