"""Prometheus metrics: job figures derived from the job table, queue depth from the broker, worker-side exports."""
