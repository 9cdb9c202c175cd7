"""Importing this script fails: the server must name this file and line."""

raise ImportError("IMPORT-FAILED-FOR-TEST")


def init():
    pass


def run(data):
    return data
