"""Helpers shared by every layer of the suite; import them as `tests.support.<module>`."""
