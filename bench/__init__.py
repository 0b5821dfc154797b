"""`make bench`: throughput and latency of the contacts API against a minimal asyncpg floor.

Not a test: nothing here asserts a speed. `python -m bench.run --help` lists the knobs.
"""
