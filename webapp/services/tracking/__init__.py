"""Tracking what predictions were worth: outcomes reported after the fact, and drift of the rows scored."""
