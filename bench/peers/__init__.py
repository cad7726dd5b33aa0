"""The servers a user would pick instead of apot, for `make bench`: each in a virtualenv of its own that the bench
installs (var/bench-peers/), serving the same model file through our own small service file here."""
