#!/usr/bin/env python3
"""validate.py - checks rendered Kubernetes manifests against the API schema, offline.

    validate.py [--schema tests/k8s/k8s-schema.json] FILE...

Each YAML document of each FILE (`kubectl kustomize` output) is looked up by apiVersion and kind
in the schema (gen_schema.py writes it from the Kubernetes OpenAPI spec) and validated with
python3-jsonschema: a field the API does not have (a misspelling), a value of the wrong type, a
missing required field, or a kind/apiVersion pair the schema does not know fails. Prints one line
per problem, `FILE: Kind/name: path: message`, and exits 1 if there was any; 0 and a summary
line otherwise.
"""
import argparse
import difflib
import json
import os
import sys

try:
    import yaml
    import jsonschema
except ImportError as exc:  # pragma: no cover - depends on the machine
    sys.exit(f"validate.py: {exc.name} is missing (scripts/install-deps.sh installs python3-yaml and python3-jsonschema)")

HERE = os.path.dirname(os.path.abspath(__file__))


def where(path):
    """A JSON path as Kubernetes writes it: spec.template.spec.containers[0].image."""
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else ("." if out else "") + str(p)
    return out or "(top)"


def explain(err):
    """The error's message, with a 'did you mean' for an unknown field."""
    msg = err.message
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        known = err.schema.get("properties", {})
        extra = [k for k in err.instance if k not in known]
        hints = []
        for k in extra:
            close = difflib.get_close_matches(k, list(known), n=1)
            hints.append(f"unknown field '{k}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        msg = "; ".join(hints) or msg
    return msg


def main():
    ap = argparse.ArgumentParser(description="validate rendered manifests against the Kubernetes API schema")
    ap.add_argument("--schema", default=os.path.join(HERE, "k8s-schema.json"))
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    schema = json.load(open(args.schema, encoding="utf-8"))
    defs = schema["definitions"]
    validators = {}
    problems = ndocs = 0
    for f in args.files:
        try:
            docs = [d for d in yaml.safe_load_all(open(f, encoding="utf-8")) if d is not None]
        except yaml.YAMLError as exc:
            print(f"{f}: not YAML: {exc}")
            problems += 1
            continue
        for doc in docs:
            ndocs += 1
            if not isinstance(doc, dict):
                print(f"{f}: a document that is not an object")
                problems += 1
                continue
            gvk = f"{doc.get('apiVersion')}/{doc.get('kind')}"
            name = f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name', '?')}"
            if gvk not in schema["kinds"]:
                known = ", ".join(sorted(schema["kinds"]))
                print(f"{f}: {name}: no schema for apiVersion '{doc.get('apiVersion')}' kind '{doc.get('kind')}' "
                      f"(misspelt, or add it to KINDS in tests/k8s/gen_schema.py; known: {known})")
                problems += 1
                continue
            if gvk not in validators:
                s = dict(schema["kinds"][gvk], definitions=defs)
                validators[gvk] = jsonschema.Draft7Validator(s)
            for err in sorted(validators[gvk].iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
                print(f"{f}: {name}: {where(err.absolute_path)}: {explain(err)}")
                problems += 1
    if problems:
        print(f"validate.py: {problems} problem(s) in {ndocs} document(s)")
        return 1
    print(f"validate.py: {ndocs} document(s) valid against {os.path.basename(args.schema)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
