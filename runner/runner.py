"""azmlinfsrv runner: serves one user scoring script to the azmlinfsrv server.

The server starts `python runner.py --worker N --entry-script /abs/score.py` in the
user's own environment; this file is only the entry point (the name a process list and
a debugger show, with the labels that tell the workers apart). The program lives in
the private package `_azmlinfsrv_runner` beside it: a name no user module takes, so
that the runner's folder on sys.path[0] shadows nothing of the user's.
"""

from _azmlinfsrv_runner.serve import main

if __name__ == "__main__":
    main()
