"""Validates CycloneDX 1.5 JSON documents against the specification's own
schema (the files beside this one), with Python's jsonschema.

Usage: python3 validate.py FILE...   exit 0 when every file is valid; else
each problem is printed and the exit status is 1.
"""
import json
import pathlib
import sys

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

HERE = pathlib.Path(__file__).resolve().parent
NAMES = ["bom-1.5.schema.json", "spdx.schema.json", "jsf-0.82.schema.json"]


def main() -> int:
    schemas = {n: json.loads((HERE / n).read_text()) for n in NAMES}
    registry = Registry().with_resources(
        (f"http://cyclonedx.org/schema/{n}", Resource.from_contents(s, default_specification=DRAFT7))
        for n, s in schemas.items()
    )
    validator = Draft7Validator(
        schemas["bom-1.5.schema.json"],
        registry=registry,
        format_checker=Draft7Validator.FORMAT_CHECKER,
    )
    failed = False
    for path in sys.argv[1:]:
        doc = json.loads(pathlib.Path(path).read_text())
        for error in sorted(validator.iter_errors(doc), key=str):
            failed = True
            location = "/".join(str(p) for p in error.absolute_path)
            print(f"{path}: {location}: {error.message}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
