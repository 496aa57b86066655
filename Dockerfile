# One image for every role; the command picks it (web, worker, flower, migrate).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

RUN useradd --create-home --uid 10001 app

COPY pyproject.toml ./
COPY shared/__init__.py shared/__init__.py
COPY web/__init__.py web/__init__.py
COPY worker/__init__.py worker/__init__.py
RUN pip install --upgrade pip && pip install .

COPY shared shared
COPY web web
COPY worker worker
RUN pip install --no-deps .

USER app
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "--access-logfile", "-", "web.wsgi:app"]
