# The image compose.yaml builds: the hub's wheel and nothing else of the source tree.
# Stage 1 builds the wheel (setup.py ships the top-level templates/ inside it as hub.templates;
# pyproject.toml's package-data lists the other files read at run time). Stage 2 installs only
# that wheel, with its runtime dependencies (celery[redis], kombu[redis,sqlalchemy], ...), and
# runs from /app, which holds nothing but var/. `make smoke` checks the same install outside
# Docker: the wheel alone in a fresh venv, migrated, served and publishing on PostgreSQL + Redis.
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY hub ./hub
COPY connectors ./connectors
COPY scheduler ./scheduler
COPY templates ./templates
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /dist .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
COPY --from=wheel /dist/ /tmp/dist/
RUN pip install --no-cache-dir /tmp/dist/govhub-*.whl && rm -rf /tmp/dist \
    && useradd --create-home govhub && mkdir -p /app/var/media /app/var/metrics \
    && chown -R govhub /app/var
# var/ (beat's schedule; var/media and var/metrics: compose's `media` and `metrics` volumes take
# this owner when created)
WORKDIR /app
USER govhub
EXPOSE 8000
CMD ["govhub", "serve", "--host", "0.0.0.0", "--port", "8000"]
