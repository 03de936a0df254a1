# The hub image: one image for the web process (`hub serve`) and the worker (`hub worker`).
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY hub ./hub
RUN pip install . && useradd --system --home /app hub && mkdir -p /app/hub-data && chown hub /app/hub-data
COPY config/hub.example.toml ./config/hub.example.toml

USER hub
EXPOSE 8080
CMD ["hub", "serve", "--host", "0.0.0.0"]
