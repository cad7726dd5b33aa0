"""The blog-post design, rebuilt minimally as a comparison point: FastAPI + Celery + Redis result backend, one task
per request, and a client that polls a result URL."""
