# apot's production image. `apot` is the entrypoint: `docker run IMAGE web`, `... worker`, `... migrate`, ...
# compose.yaml runs one web, N workers, a reconciler and the migrations from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 apot
WORKDIR /app

# Model libraries to install with apot: `docker build --build-arg APOT_EXTRAS=lightgbm,xgboost .` (both need
# OpenMP's runtime, libgomp1, which the slim image lacks).
ARG APOT_EXTRAS=""
RUN if [ -n "$APOT_EXTRAS" ]; then \
        apt-get update && apt-get install --yes --no-install-recommends libgomp1 && rm -rf /var/lib/apt/lists/*; \
    fi

# Dependencies in a layer of their own, so a change to the code does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir apot webapp tasks ml && touch apot/__init__.py webapp/__init__.py tasks/__init__.py ml/__init__.py \
    && pip install ".${APOT_EXTRAS:+[$APOT_EXTRAS]}" && pip uninstall --yes apot

# Editable: apot finds its templates, static files and migrations beside its code, in /app.
COPY . .
RUN pip install --no-deps --editable . \
    && mkdir -p /data/models /app/var && chown apot:apot /data/models /app/var

USER apot
# What the settings read (webapp/config.py): listen on every interface of the container; models on a volume.
ENV APOT_HOST=0.0.0.0 \
    APOT_PORT=8000 \
    APOT_MODELS_DIR=/data/models
EXPOSE 8000

ENTRYPOINT ["apot"]
CMD ["web"]
