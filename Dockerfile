# One image for web, worker, beat and sandbox: docker-compose.yml picks the process, each one
# defined once in unlinker/cli.py (`unlinker web|worker|beat|sandbox`), as the Procfile runs them.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UNLINKER_VAR_DIR=/app/var STATIC_ROOT=/app/staticfiles
WORKDIR /app
COPY pyproject.toml README.md ./
COPY unlinker ./unlinker
RUN pip install --no-cache-dir .
COPY . .
# collectstatic loads the settings, which need a secret key, a well-formed token key and, with
# DEBUG off, UNLINKER_SANDBOX or real API settings: build-time stand-ins, never used to serve.
RUN mkdir -p /app/var \
 && SECRET_KEY=build-only-not-secret UNLINKER_TOKEN_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    UNLINKER_SANDBOX=1 python manage.py collectstatic --noinput \
 && useradd --system --home /app unlinker && chown -R unlinker /app/var
USER unlinker
EXPOSE 8000
CMD ["unlinker", "web", "--bind", "0.0.0.0:8000"]
