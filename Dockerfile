# One image for web, worker, beat and sandbox (docker-compose.yml picks the command).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UNLINKER_VAR_DIR=/app/var STATIC_ROOT=/app/staticfiles
WORKDIR /app
COPY pyproject.toml README.md ./
COPY unlinker ./unlinker
RUN pip install --no-cache-dir .
COPY . .
RUN SECRET_KEY=build-only-not-secret UNLINKER_TOKEN_KEY=ZmFrZS1rZXktZm9yLWNvbGxlY3RzdGF0aWMtb25seS0hIQ== \
    python manage.py collectstatic --noinput \
 && useradd --system --home /app unlinker && mkdir -p /app/var && chown -R unlinker /app/var
USER unlinker
EXPOSE 8000
CMD ["gunicorn", "unlinker.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4"]
