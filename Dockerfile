# kube-batch-exporter: multi-stage build on the slim image of the Python we support (3.11).
# The final image holds the interpreter and a virtualenv with the exporter and its
# dependencies: no compiler, no pip, no build tools. It runs as a numeric non-root user and
# writes nothing to its filesystem, so it works with readOnlyRootFilesystem: true.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
# Wheels only: every dependency ships manylinux wheels, so nothing is compiled (the tzdata
# dependency brings the time zone database the slim base does not guarantee).
RUN python -m venv /opt/kbe \
 && /opt/kbe/bin/pip install --only-binary=:all: . \
 && /opt/kbe/bin/pip uninstall --yes pip \
 && find /opt/kbe -name '__pycache__' -prune -exec rm -rf {} +

FROM ${PYTHON_IMAGE}
# The base image's own pip, setuptools and ensurepip wheels go too: nothing installs at run time.
RUN python -m pip uninstall --yes pip setuptools wheel \
 && rm -rf /usr/local/lib/python3.11/ensurepip /root/.cache
COPY --from=build /opt/kbe /opt/kbe
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PATH=/opt/kbe/bin:$PATH
USER 65534:65534
EXPOSE 9847
ENTRYPOINT ["/opt/kbe/bin/kube-batch-exporter"]
CMD ["--log-format=json"]
