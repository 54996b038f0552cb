#!/usr/bin/env python3
"""pods.py - turns rendered Kubernetes manifests into local processes: what a kubelet would run
for every tally container, on 127.0.0.1, for tests/e2e/k8s.sh.

    pods.py --root DIR --tally PATH --containerfile FILE [--external HOST:PORT=ADDR]...
            [--run-image REGEX] [--skip-image REGEX]... MANIFEST...

For each pod the manifests make (StatefulSet: replicas pods NAME-0..; Job: one pod NAME), and
each container in it whose image matches --run-image (default: tally), it resolves what the
container would see, as Kubernetes does:
  - the command line: `command` or the image's ENTRYPOINT (read from the Containerfile), then
    `args`; $(VAR) references expanded from the container's environment ($$ is a `$`);
  - the environment: envFrom ConfigMaps and Secrets, then `env` (values with $(VAR) expanded,
    the downward API's metadata.name/namespace and status.podIP, configMapKeyRef, secretKeyRef),
    plus HOSTNAME;
  - the volumes: a PersistentVolumeClaim is DIR/pvc/CLAIM (one directory for every pod that
    mounts it, as ReadWriteMany), a volumeClaimTemplate or an emptyDir DIR/pods/POD/VOLUME, a
    Secret or ConfigMap volume a directory holding its keys as files; paths under a mountPath in
    the command line and the environment are rewritten to the local directory, and a path that
    is on no volume of the pod is an error (it would be the image's read-only file system);
  - the network: each container port of each pod gets a free 127.0.0.1 port (below the
    ephemeral range, which outgoing connections draw from while the processes start);
    HOST:PORT strings naming a pod through its headless Service
    (POD.SERVICE[.NAMESPACE[.svc[.cluster.local]]]) or a Service become that port, and
    0.0.0.0:PORT or 127.0.0.1:PORT (the pod's own listen address) its own; a Service whose
    pods are not run here (ZooKeeper) must be given by --external; any other HOST:PORT naming
    a pod or a Service of the manifests is an error;
  - the probes: httpGet readiness and liveness probes as URLs on the local port, and the
    Prometheus annotations (prometheus.io/scrape, port, path) as the URL a scraper would use.
It also checks what a cluster would refuse or ignore silently: a StatefulSet whose serviceName
is no headless Service selecting its pods (their DNS names would not exist), a missing ConfigMap,
Secret or claim, and (with tally's own --help) every TALLY_* variable a container gets that its
tally command does not read. Containers of images matching --skip-image are not run (the test
provides them); any other image is an error.

Writes DIR/plan/NN-POD-CONTAINER/ with `argv` and `env` (NUL-separated), `meta.json` (pod,
workload, kind, restart policy, probe and scrape URLs, the tally subcommand) and
DIR/plan/addresses.json (the HOST:PORT map). Prints one line per process. Exits 1 with one line per problem.
"""
import argparse
import base64
import json
import os
import random
import re
import socket
import subprocess
import sys

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.exit("pods.py: python3-yaml is missing (scripts/install-deps.sh installs it)")

NAMESPACE = "default"
ADDR = re.compile(r"(?<![\w.-])([A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*):(\d+)(?![\w.])")
VARREF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class Problems(list):
    def add(self, where, msg):
        self.append(f"{where}: {msg}")


def free_port(taken=set()):
    """A port free now, below the kernel's ephemeral range: the processes bind it later, and a
    port from that range (what binding port 0 gives) may meanwhile be taken by any outgoing
    connection on the machine."""
    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    hi = max(low - 1, 2048)
    lo = max(1024, hi - 12000)
    rng = random.SystemRandom()
    for _ in range(1000):
        port = rng.randint(lo, hi)
        if port in taken:
            continue
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            s.close()
        taken.add(port)
        return port
    raise SystemExit(f"pods.py: no free port in {lo}..{hi}")


def expand(s, env):
    """Kubernetes' $(VAR) expansion: defined variables are replaced, $$ is $, others stay."""
    def sub(m):
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return VARREF.sub(sub, s)


def image_entrypoint(containerfile):
    """ENTRYPOINT and CMD (JSON form) of the last stage of the Containerfile."""
    entry, cmd = [], []
    for line in open(containerfile, encoding="utf-8"):
        line = line.strip()
        if re.match(r"FROM\s", line, re.I):
            entry, cmd = [], []
        m = re.match(r"(ENTRYPOINT|CMD)\s+(\[.*\])\s*$", line, re.I)
        if m:
            val = json.loads(m.group(2))
            if m.group(1).upper() == "ENTRYPOINT":
                entry = val
            else:
                cmd = val
    return entry, cmd


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def tally_env_names(tally, sub, cache={}):
    """The TALLY_* variables `tally SUB --help` lists ([env TALLY_X]); submit also takes run's."""
    if sub not in cache:
        names = set()
        for s in [sub] + (["run"] if sub == "submit" else []):
            out = subprocess.run([tally, s, "--help"], capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(f"pods.py: `tally {s} --help` failed: {out.stderr.strip()}")
            names |= set(re.findall(r"\[env (TALLY_[A-Z0-9_]+)\]", out.stdout))
        cache[sub] = names
    return cache[sub]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--tally", required=True)
    ap.add_argument("--containerfile", required=True)
    ap.add_argument("--external", action="append", default=[], help="HOST:PORT=ADDR")
    ap.add_argument("--run-image", default=r"(^|/)tally(:|@|$)")
    ap.add_argument("--skip-image", action="append", default=[])
    ap.add_argument("manifests", nargs="+")
    a = ap.parse_args()
    problems = Problems()
    entry, cmd = image_entrypoint(a.containerfile)
    if not entry:
        sys.exit(f"pods.py: no ENTRYPOINT [...] in {a.containerfile}")

    objs = {}
    for f in a.manifests:
        for d in yaml.safe_load_all(open(f, encoding="utf-8")):
            if d:
                objs.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    cms = {n: dict(d.get("data") or {}) for n, d in objs.get("ConfigMap", {}).items()}
    secrets = {}
    for n, d in objs.get("Secret", {}).items():
        v = {k: base64.b64decode(x).decode() for k, x in (d.get("data") or {}).items()}
        v.update(d.get("stringData") or {})
        secrets[n] = v
    services = objs.get("Service", {})
    claims = objs.get("PersistentVolumeClaim", {})

    # ---- The pods -------------------------------------------------------------------------
    pods = []  # dicts: name, workload, kind, labels, spec, subdomain, vcts, restart
    for n, d in objs.get("StatefulSet", {}).items():
        tmpl = d["spec"]["template"]
        labels = tmpl["metadata"].get("labels", {})
        sel = d["spec"]["selector"].get("matchLabels", {})
        if not selects(sel, labels):
            problems.add(f"StatefulSet/{n}", "its selector does not match its pod template's labels")
        svc = services.get(d["spec"].get("serviceName", ""))
        if not svc or svc["spec"].get("clusterIP") != "None" or not selects(svc["spec"].get("selector"), labels):
            problems.add(f"StatefulSet/{n}", f"serviceName '{d['spec'].get('serviceName')}' is no headless Service "
                         "selecting its pods: their DNS names would not exist")
        vcts = [v["metadata"]["name"] for v in d["spec"].get("volumeClaimTemplates", [])]
        for i in range(d["spec"].get("replicas", 1)):
            pods.append(dict(name=f"{n}-{i}", workload=f"StatefulSet/{n}", kind="StatefulSet", labels=labels,
                             annotations=tmpl["metadata"].get("annotations", {}),
                             spec=tmpl["spec"], subdomain=d["spec"].get("serviceName"), vcts=vcts, restart="Always"))
    for n, d in objs.get("Job", {}).items():
        tmpl = d["spec"]["template"]
        pods.append(dict(name=n, workload=f"Job/{n}", kind="Job", labels=tmpl["metadata"].get("labels", {}),
                         annotations=tmpl["metadata"].get("annotations", {}),
                         spec=tmpl["spec"], subdomain=None, vcts=[], restart=tmpl["spec"].get("restartPolicy", "Always"),
                         backoff=d["spec"].get("backoffLimit", 6)))

    # ---- Addresses ------------------------------------------------------------------------
    run_re = re.compile(a.run_image)
    skip_res = [re.compile(x) for x in a.skip_image]
    amap = {}      # "host:port" -> "127.0.0.1:P"
    own = {}       # pod name -> {containerPort: local port}
    names = set()  # pod and Service names that must not appear unmapped
    for p in pods:
        names.add(p["name"])
        run = any(run_re.search(c.get("image", "")) for c in p["spec"]["containers"])
        own[p["name"]] = {}
        for c in p["spec"]["containers"]:
            for port in c.get("ports", []):
                if not run_re.search(c.get("image", "")):
                    continue
                lp = free_port()
                own[p["name"]][port["containerPort"]] = lp
                if p["subdomain"]:
                    base = f"{p['name']}.{p['subdomain']}"
                    for h in (base, f"{base}.{NAMESPACE}", f"{base}.{NAMESPACE}.svc", f"{base}.{NAMESPACE}.svc.cluster.local"):
                        amap[f"{h}:{port['containerPort']}"] = f"127.0.0.1:{lp}"
        p["run"] = run
    for n, s in services.items():
        names.add(n)
        if s["spec"].get("clusterIP") == "None":
            continue
        backing = [p for p in pods if selects(s["spec"].get("selector"), p["labels"]) and p["run"]]
        for sp in s["spec"].get("ports", []):
            tp = sp.get("targetPort", sp["port"])
            if backing:
                p = backing[0]
                cport = tp if isinstance(tp, int) else next(
                    (x["containerPort"] for c in p["spec"]["containers"] for x in c.get("ports", []) if x.get("name") == tp), None)
                if cport in own[p["name"]]:
                    for h in (n, f"{n}.{NAMESPACE}", f"{n}.{NAMESPACE}.svc", f"{n}.{NAMESPACE}.svc.cluster.local"):
                        amap[f"{h}:{sp['port']}"] = f"127.0.0.1:{own[p['name']][cport]}"
    for e in a.external:
        k, v = e.split("=", 1)
        amap[k] = v
        host = k.rsplit(":", 1)[0]
        for h in (host, f"{host}.{NAMESPACE}", f"{host}.{NAMESPACE}.svc", f"{host}.{NAMESPACE}.svc.cluster.local"):
            amap[f"{h}:{k.rsplit(':', 1)[1]}"] = v

    def rewrite_addrs(s, pod, where):
        def sub(m):
            host, port = m.group(1), int(m.group(2))
            if host in ("0.0.0.0", "127.0.0.1", "localhost"):
                if port in own[pod]:
                    return f"127.0.0.1:{own[pod][port]}"
                problems.add(where, f"'{m.group(0)}' is no container port of the pod")
                return m.group(0)
            if m.group(0) in amap:
                return amap[m.group(0)]
            if host.split(".")[0] in names or any(host.split(".")[0] == p["name"] for p in pods):
                problems.add(where, f"'{m.group(0)}' names a pod or Service of the manifests but no port it serves")
            return m.group(0)
        return ADDR.sub(sub, s)

    # ---- Containers -----------------------------------------------------------------------
    plan_dir = os.path.join(a.root, "plan")
    os.makedirs(plan_dir, exist_ok=True)
    seq = 0
    for p in pods:
        for c in p["spec"]["containers"]:
            where = f"{p['workload']} pod {p['name']} container {c['name']}"
            img = c.get("image", "")
            if not run_re.search(img):
                if not any(r.search(img) for r in skip_res):
                    problems.add(where, f"image '{img}' is neither tally's nor one the test provides")
                continue
            # The environment, in Kubernetes' order.
            env = {"HOSTNAME": p["name"]}
            for ef in c.get("envFrom", []):
                prefix = ef.get("prefix", "")
                for key, src, store in (("configMapRef", "ConfigMap", cms), ("secretRef", "Secret", secrets)):
                    if key in ef:
                        ref = ef[key]["name"]
                        if ref not in store:
                            if not ef[key].get("optional"):
                                problems.add(where, f"envFrom: no {src} '{ref}' in the manifests")
                            continue
                        for k, v in store[ref].items():
                            env[prefix + k] = v
            for ev in c.get("env", []):
                n = ev["name"]
                if "value" in ev:
                    env[n] = expand(str(ev["value"]), env)
                elif "valueFrom" in ev:
                    vf = ev["valueFrom"]
                    if "fieldRef" in vf:
                        fp = vf["fieldRef"]["fieldPath"]
                        m = re.fullmatch(r"metadata\.labels\['(.*)'\]", fp)
                        val = {"metadata.name": p["name"], "metadata.namespace": NAMESPACE,
                               "status.podIP": "127.0.0.1", "spec.nodeName": "localhost"}.get(fp)
                        if m:
                            val = p["labels"].get(m.group(1), "")
                        if val is None:
                            problems.add(where, f"env {n}: fieldPath '{fp}' is not emulated")
                            continue
                        env[n] = val
                    else:
                        for key, src, store in (("configMapKeyRef", "ConfigMap", cms), ("secretKeyRef", "Secret", secrets)):
                            if key in vf:
                                r = vf[key]
                                if r["key"] in store.get(r["name"], {}):
                                    env[n] = store[r["name"]][r["key"]]
                                elif not r.get("optional"):
                                    problems.add(where, f"env {n}: no key '{r['key']}' in {src} '{r['name']}'")
                else:
                    env[n] = ""
            argv = [expand(x, env) for x in (c["command"] if "command" in c else entry)]
            argv += [expand(str(x), env) for x in (c["args"] if "args" in c else ([] if "command" in c else cmd))]
            if os.path.basename(argv[0]) != "tally":
                problems.add(where, f"runs '{argv[0]}', not tally: the test cannot run it")
                continue

            # Volumes: local directories, and the path rewriting.
            vols = {v["name"]: v for v in p["spec"].get("volumes", [])}
            mounts = []  # (mountPath, local dir)
            for vm in c.get("volumeMounts", []):
                vn = vm["name"]
                v = vols.get(vn)
                if v is None and vn in p["vcts"]:
                    local = os.path.join(a.root, "pods", p["name"], vn)
                elif v is None:
                    problems.add(where, f"volumeMount '{vn}': no such volume")
                    continue
                elif "persistentVolumeClaim" in v:
                    claim = v["persistentVolumeClaim"]["claimName"]
                    if claim not in claims:
                        problems.add(where, f"volume '{vn}': no PersistentVolumeClaim '{claim}' in the manifests")
                    local = os.path.join(a.root, "pvc", claim)
                elif "emptyDir" in v:
                    local = os.path.join(a.root, "pods", p["name"], vn)
                elif "secret" in v or "configMap" in v:
                    kind, store = ("secret", secrets) if "secret" in v else ("configMap", cms)
                    ref = v[kind].get("secretName") if kind == "secret" else v[kind].get("name")
                    local = os.path.join(a.root, "pods", p["name"], vn)
                    os.makedirs(local, exist_ok=True)
                    if ref not in store:
                        problems.add(where, f"volume '{vn}': no {kind} '{ref}' in the manifests")
                        continue
                    items = v[kind].get("items") or [{"key": k, "path": k} for k in store[ref]]
                    for it in items:
                        fn = os.path.join(local, it["path"])
                        with open(fn, "w", encoding="utf-8") as fh:
                            fh.write(store[ref][it["key"]])
                        os.chmod(fn, 0o600)
                else:
                    problems.add(where, f"volume '{vn}': this kind of volume is not emulated")
                    continue
                if vm.get("subPath"):
                    local = os.path.join(local, vm["subPath"])
                os.makedirs(local, exist_ok=True)
                mounts.append((vm["mountPath"].rstrip("/") or "/", local))
            mounts.sort(key=lambda m: -len(m[0]))

            def rewrite_path(s, what):
                flag, sep, val = s.partition("=") if s.startswith("-") and "=" in s else ("", "", s)
                if not val.startswith("/"):
                    return s
                for mp, local in mounts:
                    if val == mp or val.startswith(mp + "/"):
                        return flag + sep + local + val[len(mp):]
                problems.add(where, f"{what}: '{val}' is on no volume of the pod (the image's read-only file system)")
                return s

            argv = [argv[0]] + [rewrite_path(rewrite_addrs(x, p["name"], where), "argument") for x in argv[1:]]
            env = {k: rewrite_path(rewrite_addrs(v, p["name"], where), f"env {k}") for k, v in env.items()}
            if "TMPDIR" not in env:
                env["TMPDIR"] = next((l for mp, l in mounts if mp == "/tmp"), os.path.join(a.root, "pods", p["name"], "rootfs-tmp"))
                os.makedirs(env["TMPDIR"], exist_ok=True)

            sub = argv[1] if len(argv) > 1 else ""
            known = tally_env_names(a.tally, sub) if sub else set()
            for k in env:
                if k.startswith("TALLY_") and k not in known:
                    problems.add(where, f"environment variable {k} is not one `tally {sub}` reads "
                                 f"(its --help lists: {', '.join(sorted(known)) or 'none'})")

            probes = {}
            for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
                pr = c.get(kind)
                if not pr:
                    continue
                hg = pr.get("httpGet")
                if not hg:
                    problems.add(where, f"{kind}: only httpGet probes are emulated for tally containers")
                    continue
                port = hg["port"]
                if not isinstance(port, int):
                    port = next((x["containerPort"] for x in c.get("ports", []) if x.get("name") == port), None)
                if port not in own[p["name"]]:
                    problems.add(where, f"{kind}: port {hg['port']} is no container port")
                    continue
                probes[kind] = f"http://127.0.0.1:{own[p['name']][port]}{hg.get('path', '/')}"

            # Where the Prometheus annotations of the pod send the scraper.
            scrape = None
            ann = p["annotations"]
            if ann.get("prometheus.io/scrape") == "true":
                port = int(ann.get("prometheus.io/port", "0") or 0)
                if port in own[p["name"]] and any(x["containerPort"] == port for x in c.get("ports", [])):
                    scrape = f"http://127.0.0.1:{own[p['name']][port]}{ann.get('prometheus.io/path', '/metrics')}"
                elif len(p["spec"]["containers"]) == 1:
                    problems.add(where, f"prometheus.io/port '{ann.get('prometheus.io/port')}' is no container port")

            seq += 1
            d = os.path.join(plan_dir, f"{seq:02d}-{p['name']}-{c['name']}")
            os.makedirs(d, exist_ok=True)
            argv[0] = a.tally
            with open(os.path.join(d, "argv"), "wb") as fh:
                fh.write(b"".join(x.encode() + b"\0" for x in argv))
            with open(os.path.join(d, "env"), "wb") as fh:
                fh.write(b"".join(f"{k}={v}".encode() + b"\0" for k, v in env.items()))
            meta = dict(pod=p["name"], workload=p["workload"], kind=p["kind"], container=c["name"],
                        restart=p["restart"], backoff=p.get("backoff"), subcommand=sub, probes=probes, scrape=scrape,
                        ports={str(k): v for k, v in own[p["name"]].items()})
            with open(os.path.join(d, "meta.json"), "w", encoding="utf-8") as fh:
                json.dump(meta, fh)
            print(f"{os.path.basename(d)}: {p['workload']}: {' '.join(argv[1:])}")
    with open(os.path.join(plan_dir, "addresses.json"), "w", encoding="utf-8") as fh:
        json.dump(amap, fh, indent=1, sort_keys=True)
    if problems:
        for x in problems:
            print(f"pods.py: {x}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
