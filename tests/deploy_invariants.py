"""Checks on the Dockerfile and deploy/ that no schema validator makes: that the pieces
agree with each other and with how azmlinfsrv behaves (drain time, probe routes, port,
user). Run by tests/integration/deploy.rs in the validators' venv (PyYAML and
kubernetes-validate come from there):

    python tests/deploy_invariants.py ROOT -k 1.30.0 [-k 1.37.0 ...]

ROOT holds `Dockerfile` and `deploy/`. Prints one line per failed check and exits 1 if
any failed, 0 otherwise.
"""

import argparse
import json
import re
import sys
from pathlib import Path

import kubernetes_validate.utils as kubernetes_validate
import yaml

# What the server does on SIGTERM, from the README ("Shutdown"): drain for
# --shutdown_grace seconds, then up to about 6 s to stop the workers.
WORKER_STOP_SECONDS = 6
SERVER_PORT = 5001
SERVER_BINARY = "/usr/local/bin/azmlinfsrv"

# The KServe-only fields a predictor may carry next to its PodSpec fields: KServe
# v1beta1 ComponentExtensionSpec (its Go type and python/kserve/docs). Everything else in
# the predictor must be a Kubernetes PodSpec field.
KSERVE_COMPONENT_FIELDS = {
    "minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "containerConcurrency",
    "timeout", "canaryTrafficPercent", "logger", "batcher", "labels", "annotations",
    "deploymentStrategy",
}

failures = []


def check(condition, message):
    if not condition:
        failures.append(message)
    return condition


# ---- Dockerfile -----------------------------------------------------------------------

def dockerfile_instructions(text):
    """(INSTRUCTION, arguments) of the final stage, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", "\n".join(
        line for line in text.splitlines() if not line.lstrip().startswith("#")))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            instructions.append((word.upper(), rest.strip()))
    stages = [i for i, (word, _) in enumerate(instructions) if word == "FROM"]
    check(len(stages) >= 2, "Dockerfile: not multi-stage (build stage + runtime stage)")
    return instructions[stages[-1]:] if stages else instructions


def exec_form(arguments):
    try:
        value = json.loads(arguments)
    except ValueError:
        return None
    return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


def check_dockerfile(path):
    final = dockerfile_instructions(path.read_text())
    last = {}
    for word, arguments in final:
        last[word] = arguments
    check(last.get("STOPSIGNAL") == "SIGTERM",
          f"Dockerfile: STOPSIGNAL must be SIGTERM (what the server drains on), found {last.get('STOPSIGNAL')!r}")
    user = last.get("USER", "")
    uid = user.split(":")[0]
    check(uid.isdigit() and int(uid) != 0,
          f"Dockerfile: the final USER must be a numeric non-root uid (runAsNonRoot can only check numbers), found {user!r}")
    entrypoint = exec_form(last.get("ENTRYPOINT", ""))
    if check(entrypoint is not None,
             f"Dockerfile: ENTRYPOINT must be in exec form (a JSON array) so SIGTERM reaches the server, found {last.get('ENTRYPOINT')!r}"):
        check(SERVER_BINARY in entrypoint,
              f"Dockerfile: ENTRYPOINT must run {SERVER_BINARY}, found {entrypoint}")
        if entrypoint and entrypoint[0] != SERVER_BINARY:
            check(entrypoint[0].endswith("/tini") and entrypoint[1:] == ["--", SERVER_BINARY],
                  f"Dockerfile: ENTRYPOINT may only put tini in front of the server, found {entrypoint}")
    check(exec_form(last.get("CMD", "")) is not None,
          f"Dockerfile: CMD must be in exec form, found {last.get('CMD')!r}")
    check(str(SERVER_PORT) in last.get("EXPOSE", "").split(),
          f"Dockerfile: must EXPOSE {SERVER_PORT}, found {last.get('EXPOSE')!r}")
    return int(uid) if uid.isdigit() else None


# ---- pods (the Deployment's template and the KServe predictor) ------------------------

def flag_value(args, flag):
    if flag in args[:-1]:
        return args[args.index(flag) + 1]
    return None


def prestop_seconds(container):
    pre_stop = container.get("lifecycle", {}).get("preStop", {})
    if "sleep" in pre_stop:
        return int(pre_stop["sleep"]["seconds"])
    command = pre_stop.get("exec", {}).get("command", [])
    if len(command) == 2 and command[0].endswith("sleep") and command[1].isdigit():
        return int(command[1])
    return 0


def probe_port(container, probe):
    """The numeric port a probe (or a Service) names, resolving a port name."""
    port = probe.get("httpGet", {}).get("port")
    return resolve_port(container, port)


def resolve_port(container, port):
    if isinstance(port, int):
        return port
    for declared in container.get("ports", []):
        if declared.get("name") == port:
            return declared["containerPort"]
    return None


def check_pod(where, pod, container_name, uid):
    """The invariants of one pod spec; returns its container (or None)."""
    containers = [c for c in pod.get("containers", []) if c.get("name") == container_name]
    if not check(len(containers) == 1, f"{where}: no container named {container_name!r}"):
        return None
    container = containers[0]
    args = container.get("args", [])

    grace = flag_value(args, "--shutdown_grace")
    if check(grace is not None and grace.isdigit(),
             f"{where}: pass --shutdown_grace explicitly (terminationGracePeriodSeconds is computed from it), args are {args}"):
        needed = prestop_seconds(container) + int(grace) + WORKER_STOP_SECONDS
        termination = pod.get("terminationGracePeriodSeconds", 30)
        check(termination > needed,
              f"{where}: terminationGracePeriodSeconds {termination} must exceed preStop sleep "
              f"{prestop_seconds(container)} + --shutdown_grace {grace} + {WORKER_STOP_SECONDS} = {needed}, "
              "or the kubelet kills requests that are still draining")
    check(prestop_seconds(container) > 0,
          f"{where}: add a preStop sleep, so endpoints drop the pod before the server stops accepting")

    ports = [p.get("containerPort") for p in container.get("ports", [])]
    check(ports == [SERVER_PORT], f"{where}: the container must declare port {SERVER_PORT} (only), found {ports}")
    expected = {"startupProbe": "/", "livenessProbe": "/", "readinessProbe": "/readiness"}
    for probe_name, path in expected.items():
        probe = container.get(probe_name)
        if check(probe is not None, f"{where}: no {probe_name}"):
            found = probe.get("httpGet", {}).get("path")
            check(found == path, f"{where}: {probe_name} must GET {path}, found {found!r}")
            check(probe_port(container, probe) == SERVER_PORT,
                  f"{where}: {probe_name} must probe port {SERVER_PORT}")

    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    check("WORKER_COUNT" in env, f"{where}: set WORKER_COUNT (workers per pod) explicitly")
    requests = container.get("resources", {}).get("requests", {})
    check("cpu" in requests and "memory" in requests,
          f"{where}: request cpu (the HPA scales on its utilisation) and memory, found {requests}")
    check("memory" in container.get("resources", {}).get("limits", {}), f"{where}: set a memory limit")

    pod_security = pod.get("securityContext", {})
    container_security = container.get("securityContext", {})
    check(pod_security.get("runAsNonRoot") is True, f"{where}: runAsNonRoot must be true")
    run_as = container_security.get("runAsUser", pod_security.get("runAsUser"))
    check(uid is None or run_as in (None, uid),
          f"{where}: runAsUser {run_as} differs from the Dockerfile's USER {uid}")
    if container_security.get("readOnlyRootFilesystem"):
        # The server must be able to write its runner files under $XDG_CACHE_HOME.
        cache = env.get("XDG_CACHE_HOME") or ""
        empty_dirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        writable = [m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] in empty_dirs]
        check(any(cache == m or cache.startswith(m.rstrip("/") + "/") for m in writable),
              f"{where}: with a read-only root filesystem, XDG_CACHE_HOME ({cache!r}) must be under "
              f"an emptyDir mount, found mounts {writable}")
    return container


def load_one(path):
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    check(len(documents) == 1, f"{path}: expected one object, found {len(documents)}")
    return documents[0] if documents else {}


def matches(selector, labels):
    wanted = selector.get("matchLabels", selector)
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


def check_kubernetes(folder, uid):
    kustomization = load_one(folder / "kustomization.yaml")
    manifests = sorted(p.name for p in folder.glob("*.yaml") if p.name != "kustomization.yaml")
    check(sorted(kustomization.get("resources", [])) == manifests,
          f"kustomization.yaml: resources {kustomization.get('resources')} must list every manifest {manifests}")

    objects = {}
    for name in manifests:
        obj = load_one(folder / name)
        objects.setdefault(obj.get("kind"), []).append(obj)
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"):
        check(len(objects.get(kind, [])) == 1, f"deploy/kubernetes: expected one {kind}")
    if failures:
        return
    deployment = objects["Deployment"][0]
    service = objects["Service"][0]
    pdb = objects["PodDisruptionBudget"][0]
    hpa = objects["HorizontalPodAutoscaler"][0]

    template = deployment["spec"]["template"]
    labels = template["metadata"]["labels"]
    container = check_pod("Deployment", template["spec"], "score", uid)
    check("replicas" not in deployment["spec"],
          "Deployment: leave replicas to the HorizontalPodAutoscaler (kubectl apply would reset it)")

    check(matches(service["spec"]["selector"], labels), "Service: selector does not match the pod labels")
    check(matches(pdb["spec"]["selector"], labels), "PodDisruptionBudget: selector does not match the pod labels")
    if container:
        targets = [resolve_port(container, p.get("targetPort")) for p in service["spec"]["ports"]]
        check(targets == [SERVER_PORT],
              f"Service: targetPort must be the container's port {SERVER_PORT}, found {targets}")
    target = hpa["spec"]["scaleTargetRef"]
    check((target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"]),
          f"HorizontalPodAutoscaler: must scale the Deployment {deployment['metadata']['name']}, found {target}")
    check(hpa["spec"].get("minReplicas", 1) >= 2,
          "HorizontalPodAutoscaler: minReplicas below 2 leaves nothing serving while the one pod drains")


def check_kserve(path, uid, kubernetes_versions):
    service = load_one(path)
    check(service.get("apiVersion") == "serving.kserve.io/v1beta1" and service.get("kind") == "InferenceService",
          f"{path.name}: expected a serving.kserve.io/v1beta1 InferenceService")
    spec = service.get("spec", {})
    check(set(spec) <= {"predictor", "transformer", "explainer"}, f"{path.name}: unknown spec fields {sorted(spec)}")
    predictor = dict(spec.get("predictor", {}))
    for field in KSERVE_COMPONENT_FIELDS:
        predictor.pop(field, None)
    # What is left must be a valid PodSpec: validate it as a Pod with the same metadata.
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": service.get("metadata", {}), "spec": predictor}
    for version in kubernetes_versions:
        try:
            kubernetes_validate.validate(pod, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(p) for p in error.path)
            failures.append(f"{path.name}: predictor is not a valid strict PodSpec for Kubernetes {version}: {where}: {error.message}")
    check_pod(path.name, predictor, "kserve-container", uid)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("-k", "--kubernetes-version", action="append", required=True)
    options = parser.parse_args()
    uid = check_dockerfile(options.root / "Dockerfile")
    check_kubernetes(options.root / "deploy" / "kubernetes", uid)
    check_kserve(options.root / "deploy" / "kserve" / "inferenceservice.yaml", uid, options.kubernetes_version)
    for failure in failures:
        print("FAIL", failure)
    print(f"deploy invariants: {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
