#!/usr/bin/env python3
"""gen_schema.py - writes tests/k8s/k8s-schema.json, the JSON Schema that validate.py checks the
rendered manifests of deploy/k8s against, from the models of the npm package @kubernetes/client-node.

That package is generated from the Kubernetes OpenAPI spec (its models say which release); each
model's .js file holds its fields with their wire names and types (`attributeTypeMap`), and its
.d.ts file marks the optional ones with `?`. This script turns them into JSON Schema draft-07
definitions, closed (additionalProperties: false, as `kubectl apply --validate=strict` treats
objects), for the kinds in KINDS and every model they reach. Only this script's output is kept
in the repository, so the tests need neither the network nor npm. To regenerate (or move to a
newer Kubernetes release):

    d=$(mktemp -d) && (cd "$d" && npm pack @kubernetes/client-node@2.0.1 && tar xzf kubernetes-client-node-*.tgz)
    python3 tests/k8s/gen_schema.py "$d/package" >tests/k8s/k8s-schema.json

Standard library only.
"""
import json
import os
import re
import sys

# apiVersion/kind -> the model that describes it. A kind the manifests start using is added here.
KINDS = {
    "v1/ConfigMap": "V1ConfigMap",
    "v1/Namespace": "V1Namespace",
    "v1/PersistentVolumeClaim": "V1PersistentVolumeClaim",
    "v1/Secret": "V1Secret",
    "v1/Service": "V1Service",
    "v1/ServiceAccount": "V1ServiceAccount",
    "apps/v1/Deployment": "V1Deployment",
    "apps/v1/StatefulSet": "V1StatefulSet",
    "batch/v1/Job": "V1Job",
    "policy/v1/PodDisruptionBudget": "V1PodDisruptionBudget",
}

# Fields that are resource.Quantity in the OpenAPI spec: the generated client types them as
# strings, but the API server also takes numbers (`cpu: 2`).
QUANTITY = {
    ("V1ResourceRequirements", "limits"), ("V1ResourceRequirements", "requests"),
    ("V1VolumeResourceRequirements", "limits"), ("V1VolumeResourceRequirements", "requests"),
    ("V1EmptyDirVolumeSource", "sizeLimit"), ("V1PersistentVolumeClaimStatus", "capacity"),
    ("V1PersistentVolumeClaimStatus", "allocatedResources"),
}
QUANTITY_SCHEMA = {"type": ["string", "number"]}


def load_model(models, name):
    """The (fields, required) of model NAME: fields as [(wire name, TS name, type, format)]."""
    js = open(os.path.join(models, name + ".js"), encoding="utf-8").read()
    m = re.search(r"\.attributeTypeMap = (\[.*?\n\]);", js, re.S)
    if not m:
        raise SystemExit(f"gen_schema: no attributeTypeMap in {name}.js")
    fields = [(a["baseName"], a["name"], a["type"], a["format"]) for a in json.loads(m.group(1))]
    dts = open(os.path.join(models, name + ".d.ts"), encoding="utf-8").read()
    required = set(re.findall(r"^\s+'([A-Za-z0-9_$]+)':", dts, re.M))
    return fields, required


def type_schema(t, fmt, want):
    """The JSON Schema of a TypeScript type string; model names found are added to WANT."""
    t = t.strip()
    m = re.fullmatch(r"Array<(.*)>", t)
    if m:
        return {"type": "array", "items": type_schema(m.group(1), fmt, want)}
    m = re.fullmatch(r"\{ \[key: string\]: (.*); \}", t)
    if m:
        return {"type": "object", "additionalProperties": type_schema(m.group(1), fmt, want)}
    if t == "string":
        return {"type": "string"}
    if t == "number":
        return {"type": "integer"} if fmt in ("int32", "int64") else {"type": "number"}
    if t == "boolean":
        return {"type": "boolean"}
    if t == "Date":
        return {"type": "string"}
    if t == "IntOrString":
        return {"type": ["integer", "string"]}
    if t in ("any", "object"):
        return {}
    if re.fullmatch(r"[A-Z][A-Za-z0-9]*", t):
        want.append(t)
        return {"$ref": "#/definitions/" + t}
    raise SystemExit(f"gen_schema: unknown type {t!r}")


def main():
    if len(sys.argv) != 2:
        raise SystemExit("usage: gen_schema.py UNPACKED_CLIENT_NODE_PACKAGE_DIR >k8s-schema.json")
    pkg = sys.argv[1]
    models = os.path.join(pkg, "dist", "gen", "models")
    meta = json.load(open(os.path.join(pkg, "package.json"), encoding="utf-8"))
    head = open(os.path.join(models, "V1Pod.js"), encoding="utf-8").read()
    release = re.search(r"OpenAPI spec version: (\S+)", head).group(1)

    defs = {}
    want = list(KINDS.values())
    while want:
        name = want.pop()
        if name in defs:
            continue
        fields, required = load_model(models, name)
        props = {}
        for wire, tsname, t, fmt in fields:
            if (name, wire) in QUANTITY:
                props[wire] = ({"type": "object", "additionalProperties": QUANTITY_SCHEMA}
                               if t.startswith("{") else QUANTITY_SCHEMA)
            else:
                props[wire] = type_schema(t, fmt, want)
        req = sorted(w for w, tsname, _, _ in fields if tsname in required)
        d = {"type": "object", "properties": props, "additionalProperties": False}
        if req:
            d["required"] = req
        defs[name] = d

    out = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "description": "Kubernetes API objects (closed), generated by tests/k8s/gen_schema.py from "
                       f"{meta['name']} {meta['version']} (Kubernetes OpenAPI {release}; Apache-2.0)",
        "kinds": {k: {"$ref": "#/definitions/" + v} for k, v in sorted(KINDS.items())},
        "definitions": dict(sorted(defs.items())),
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
