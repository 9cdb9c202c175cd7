# Answers with the environment variables that conda activation sets (or must not set),
# so that tests check what the scoring script really sees.
import os
import sys

NAMES = [
    "PATH",
    "CONDA_PREFIX",
    "CONDA_DEFAULT_ENV",
    "CONDA_SHLVL",
    "CONDA_PROMPT_MODIFIER",
    "CONDA_PREFIX_1",
    "MODEL_FLAVOUR",
    "FROM_ACTIVATE_D",
    "MODEL_SEARCH_PATH",
    "ACTIVATED_BY",
    "AFTER_HANG",
    "LD_LIBRARY_PATH",
]


def init():
    pass


def run(data):
    answer = {name: os.environ.get(name) for name in NAMES}
    answer["sys.prefix"] = sys.prefix
    return answer
