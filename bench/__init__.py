"""`make bench`: seeds its own database and measures the API, jobs and memory (see bench/run.py)."""
