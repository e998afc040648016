# The Churn Saver image. `churnsaver` is the entrypoint, so the command picks the process:
#   docker run IMAGE serve --host 0.0.0.0     docker run IMAGE worker     docker run IMAGE migrate
# compose.yaml runs the scaled-out set-up from it.

# Build: resolve nothing, install exactly uv.lock (without the dev group) into /opt/venv.
FROM python:3.11-slim AS build

ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1

RUN pip install --no-cache-dir --disable-pip-version-check "uv==0.13.9"

WORKDIR /src
# Dependencies first, in their own layer: rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
# Then the project itself, as a regular (non-editable) install, so the image needs no source tree.
COPY . .
RUN uv sync --frozen --no-dev --no-editable


# Run: the virtual environment and nothing else, as an unprivileged user.
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CHURNSAVER_DATA_DIR=/var/lib/churnsaver

RUN groupadd --system --gid 10001 churnsaver \
    && useradd --system --uid 10001 --gid churnsaver --home-dir /var/lib/churnsaver --no-create-home churnsaver \
    && install -d -o churnsaver -g churnsaver -m 0700 /var/lib/churnsaver

COPY --from=build /opt/venv /opt/venv

USER churnsaver
WORKDIR /var/lib/churnsaver
EXPOSE 8000

ENTRYPOINT ["churnsaver"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
