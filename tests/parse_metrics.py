"""Parses a /metrics answer (stdin) with the official Python client's strict OpenMetrics
parser and prints its samples as JSON: [{"name", "labels", "value", "type"}, ...].

A body the parser refuses (bad syntax, a missing `# EOF`, histogram buckets out of
order, a counter without `_total`...) makes it exit 1 with the parser's error: the
integration tests (tests/integration/metrics.rs) use it to check what a real scraper
would make of our output.
"""
import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def main():
    text = sys.stdin.read()
    samples = []
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.append({
                    "name": sample.name,
                    "labels": sample.labels,
                    "value": sample.value,
                    "type": family.type,
                })
    except Exception as error:  # the parser raises ValueError and others
        print("the metrics do not parse: {}: {}".format(type(error).__name__, error), file=sys.stderr)
        return 1
    json.dump(samples, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
