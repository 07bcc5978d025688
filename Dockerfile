# b12-neuro-cds: CDS Hooks 2.0 service. Same entry point as `scripts/run.sh` (b12-cds serve).
# Two stages: build the wheel (hooks/ and openapi.yaml ship inside it as package data), then install
# only that wheel, not an editable checkout: the image runs what `pip install .` gives any user.
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md openapi.yaml ./
COPY hooks ./hooks
COPY cds_service ./cds_service
RUN pip wheel --no-deps --wheel-dir /dist .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    CDS_ENV=production \
    CDS_DATABASE_URL=sqlite:////data/b12-cds.db

WORKDIR /app
COPY --from=build /dist /dist
# The postgres extra: several replicas share one PostgreSQL (deploy/kubernetes, docs/deployment.md).
RUN pip install "$(find /dist -name 'b12_neuro_cds-*.whl')[postgres]" \
    && rm -rf /dist \
    && useradd --system --uid 10001 --home-dir /app cds \
    && mkdir -p /data && chown cds /data

USER 10001
EXPOSE 8080
# Production refuses to start with CORS '*': set CDS_CORS_ORIGINS to the EHR origins at run time.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["b12-cds", "serve", "--host", "0.0.0.0", "--port", "8080"]
