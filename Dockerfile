# vesagent container image: `make image` (podman --format docker, or docker) from the repository
# root; by hand: `podman build --format docker -t vesagent:0.1.0 .`.
# Every setting comes from the environment (README, "Running"); VESAGENT_AAI_URL is required:
#   docker run -e VESAGENT_AAI_URL=https://aai.onap:8443 -v vesagent-state:/var/lib/vesagent \
#              -p 9009:9009 vesagent:0.1.0
FROM python:3.11-slim

# No .pyc writes at run time: the root filesystem may be read-only (deploy/kubernetes).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# The same pinned, hash-checked versions `make test` installs (requirements.lock; `make lock`),
# then the agent itself without resolving anything; `pip check` fails the build if the lock
# misses a dependency. .dockerignore keeps the simulators and benchmarks out of the image.
# setup.py reads README.md for the package's long description.
COPY requirements.lock setup.py pyproject.toml README.md ./
COPY vesagent ./vesagent
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock \
    && pip install --no-cache-dir . --no-deps \
    && pip check \
    && rm -rf /src

# A fixed uid/gid, so Kubernetes' runAsUser/fsGroup and volume ownership can name it.
RUN groupadd --system --gid 10001 vesagent \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/vesagent \
       --no-create-home --shell /usr/sbin/nologin vesagent \
    && mkdir -p /var/lib/vesagent \
    && chown 10001:10001 /var/lib/vesagent \
    && chmod 0750 /var/lib/vesagent

ENV VESAGENT_STATE_DIR=/var/lib/vesagent \
    VESAGENT_LISTEN=0.0.0.0:9009 \
    VESAGENT_LOG_FORMAT=json

# The outbox and alarm state (SQLite): must outlive the container.
VOLUME ["/var/lib/vesagent"]
WORKDIR /var/lib/vesagent
USER 10001:10001
EXPOSE 9009

# slim has no curl: ask /healthz with the standard library, on the port VESAGENT_LISTEN names.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('VESAGENT_LISTEN', '0.0.0.0:9009').rpartition(':')[2]; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:' + port + '/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["vesagent"]
CMD ["run"]
