"""The Celery app and its thin tasks: each takes job ids and hands the work to the scoring service."""
