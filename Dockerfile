# The image compose.yaml builds: the hub with its console script `govhub`.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN apt-get update && apt-get install -y --no-install-recommends fonts-wqy-microhei \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY connectors ./connectors
COPY scheduler ./scheduler
COPY templates ./templates
RUN pip install --no-cache-dir . && useradd --create-home govhub && mkdir -p /app/var \
    && chown govhub /app/var
USER govhub
EXPOSE 8000
CMD ["govhub", "serve", "--host", "0.0.0.0", "--port", "8000"]
