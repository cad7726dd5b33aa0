"""The servers a user would pick instead of apot, for `make bench`: each in a virtualenv of its own that the bench
installs (var/bench-peers/), serving the same model file through our own small service file here."""

# Every system gets this row: all six features, so that no server has to fill one in. Nothing is imported here:
# the peers' own virtualenvs import this package too.
ROW = {
    "island": "Torgersen",
    "sex": "male",
    "bill_length_mm": 39.1,
    "bill_depth_mm": 18.7,
    "flipper_length_mm": 181.0,
    "body_mass_g": 3750.0,
}
