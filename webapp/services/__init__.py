"""The one place that creates, reads and finishes jobs: pages, the JSON API and the tasks all call it."""
