# syntax=docker/dockerfile:1
# The todo API: `docker build -t todo .`, then `docker run -e TODO_DATABASE_URL=… -e TODO_JWKS_URL=… todo`
# (`todo serve`; `docker run … todo migrate` upgrades the schema). Dependencies come only from
# requirements/runtime.txt, each file checked against its hash, and only as wheels: the build
# needs no compiler, and the final image has none.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /app
COPY requirements/pip.txt requirements/runtime.txt requirements/
RUN /opt/venv/bin/pip install --require-hashes --only-binary=:all: -r requirements/pip.txt \
    && /opt/venv/bin/pip install --require-hashes --only-binary=:all: -r requirements/runtime.txt
COPY pyproject.toml README.md LICENSE alembic.ini ./
COPY migrations migrations
COPY todo_core todo_core
COPY todo_adapters todo_adapters
COPY todo_api todo_api
# Editable, so that `todo migrate` finds alembic.ini and migrations/ beside the packages in /app.
# The build backend (setuptools, from the lock) is then removed: the image runs, it does not build.
# The project's bytecode is compiled here, as the unprivileged user cannot write it at run time.
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation -e . \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall --yes setuptools \
    && /opt/venv/bin/python -m compileall -q todo_core todo_adapters todo_api migrations

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 todo \
    && useradd --system --uid 10001 --gid todo --no-create-home --home-dir /app --shell /usr/sbin/nologin todo
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TODO_HOST=0.0.0.0 \
    TODO_PORT=8000
USER todo:todo
EXPOSE 8000
# The slim image has no curl: Python asks /healthz (tests/deploy/test_image.py runs this command).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TODO_PORT', '8000') + '/healthz', timeout=4)"]
ENTRYPOINT ["todo"]
CMD ["serve"]
