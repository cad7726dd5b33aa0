"""Model store, input schemas and prediction: plain Python, no web framework and no task queue."""
