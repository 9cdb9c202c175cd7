# The azmlinfsrv server with your scoring script, as one image.
#
#   docker build -t my-model .                                  # the bundled examples/hello
#   docker build --build-arg APP_DIR=models/churn -t churn .    # your code (inside this folder)
#   docker run --rm -p 5001:5001 churn
#
# APP_DIR and REQUIREMENTS are paths inside the build context (this repository). Stage 1
# builds the server; stage 2 is an ordinary Python image where your environment is
# installed with pip, the usual way, and the server runs your score.py in it.
#
# Checked by hadolint in tests/integration/deploy.rs; no image is built by the tests
# (there is no container engine where they run).

# ---- stage 1: the server binary ------------------------------------------------------
FROM rust:1-slim-bookworm AS build
WORKDIR /src
# Only what the build reads (build.rs embeds runner/*.py), so that edits to tests, docs
# or your app do not rebuild the binary. --locked: exactly the tested dependency versions.
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY runner ./runner
RUN cargo build --release --locked

# ---- stage 2: Python, your environment, your code ------------------------------------
# Same Debian release as stage 1, so the binary finds the glibc it was linked against.
FROM python:3.11-slim-bookworm

# tini as PID 1. Our server handles SIGTERM itself (it installs a handler, so being PID 1,
# which ignores signals without one, is not a problem), and reaps its own workers. But a
# worker's own children (a multiprocessing pool, a subprocess of score.py) are re-parented
# to PID 1 when the worker is killed (scoring timeout, crash, shutdown); the server only
# waits for the processes it started, so without an init they would stay zombies for the
# container's life. tini reaps them and passes SIGTERM to the server only (no -g: the
# workers are in their own process groups and the server stops them in order after the
# drain). Pinned to Debian bookworm's version for a reproducible image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini=0.19.0-1+b3 \
    && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid (10001, also in deploy/), so that Kubernetes' runAsNonRoot can check
# it (a user name cannot be checked) and so that volume permissions are predictable.
RUN groupadd --gid 10001 app \
    && useradd --uid 10001 --gid app --create-home --home-dir /home/app \
        --shell /usr/sbin/nologin app

# Your Python environment, in a venv owned by root (the server cannot change it). The
# server runs the script with the active virtualenv's Python, found from VIRTUAL_ENV.
ENV VIRTUAL_ENV=/opt/venv
ENV PATH="/opt/venv/bin:${PATH}"
RUN python -m venv "${VIRTUAL_ENV}"
ARG APP_DIR=examples/hello
ARG REQUIREMENTS=${APP_DIR}/requirements.txt
# Copied on its own before the code, so that editing score.py does not reinstall packages.
COPY ${REQUIREMENTS} /tmp/requirements.txt
RUN pip install --no-cache-dir -r /tmp/requirements.txt && rm /tmp/requirements.txt

COPY --from=build /src/target/release/azmlinfsrv /usr/local/bin/azmlinfsrv

# The code, owned by root and read-only to the server's user. No .pyc files are written:
# /app is not writable by that user (and the root filesystem may be read-only).
COPY ${APP_DIR} /app
ENV PYTHONDONTWRITEBYTECODE=1
# Where the server writes its bundled runner files; /tmp stays writable when the root
# filesystem is read-only (Kubernetes mounts an emptyDir there, see deploy/kubernetes).
ENV XDG_CACHE_HOME=/tmp/cache

USER 10001:10001
# The app root: config.json, logging.json and swagger files are looked for here.
WORKDIR /app
EXPOSE 5001
# What the server drains on (--shutdown_grace, 30 s by default); also Docker's default,
# stated so that no base image or runtime setting changes it.
STOPSIGNAL SIGTERM

# For `docker run` and Compose only: Kubernetes ignores HEALTHCHECK and uses the probes
# of deploy/kubernetes/deployment.yaml. The venv's Python is used because the slim image
# has no curl; a 503 (init() not finished, no worker alive) raises, so the check fails.
# A long start period lets a slow init() finish. Assumes the default --port 5001.
HEALTHCHECK --interval=10s --timeout=5s --start-period=600s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:5001/', timeout=4)"]

# Exec form: no shell in between, so SIGTERM reaches tini, which passes it to the server.
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/azmlinfsrv"]
CMD ["--entry_script", "/app/score.py"]
