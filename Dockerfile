# One image for every role; the command picks it (see docker-compose.yml):
#   web      gunicorn --config gunicorn.conf.py --bind 0.0.0.0:8000 web.wsgi:app
#   worker   celery -A worker.celery_app:celery_app worker -Q email
#   beat     celery -A worker.celery_app:celery_app beat
#   flower   celery -A worker.celery_app:celery_app flower --conf=flowerconfig.py
#   migrate  flask --app web.wsgi db upgrade
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app

# Dependencies first, from pyproject.toml alone: this layer is rebuilt when the
# dependencies change, not on every code change.
COPY pyproject.toml /tmp/pyproject.toml
RUN python -m venv "$VIRTUAL_ENV" \
    && python -c "import tomllib; print('\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt /tmp/pyproject.toml

# A user without a login shell or root rights; state (Flower's database, beat's schedule)
# lives in /var/lib/microblog, which compose mounts as volumes.
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin app \
    && mkdir -p /var/lib/microblog/flower /var/lib/microblog/beat \
    && chown -R app:app /var/lib/microblog

WORKDIR /app
COPY shared shared
COPY web web
COPY worker worker
COPY gunicorn.conf.py flowerconfig.py ./

USER app
EXPOSE 8000 5555
CMD ["gunicorn", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "web.wsgi:app"]
