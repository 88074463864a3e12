"""The counter example: a service that counts, keeps its count across restarts, and a planted bug."""
