# Validates the OpenAPI documents named on the command line with openapi-spec-validator
# (which picks the rules for 2.0, 3.0 or 3.1 from the document itself). One line per
# file; exit status 1 if any is invalid.
import json
import sys

from openapi_spec_validator import validate


def main(paths):
    invalid = 0
    for path in paths:
        with open(path, encoding="utf-8") as document_file:
            document = json.load(document_file)
        version = document.get("swagger") or document.get("openapi")
        try:
            validate(document)
        except Exception as error:  # the validator's errors say what is wrong
            invalid += 1
            print("INVALID {} ({}): {}".format(path, version, error))
        else:
            print("VALID {} ({})".format(path, version))
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
