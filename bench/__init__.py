"""Benchmarks of the nightly pipeline: ``python -m bench --scale small`` (``make bench SCALE=small``).

Every stage runs in a child process of its own so that wall time, CPU time and peak memory are the
stage's alone; the source emulators run as threads of the bench process, and the warehouse is a
PostgreSQL of the bench's own (``.warehouse/bench-pgdata``) so that tuning it touches nobody else.
Results go to ``bench/results/<scale>.json`` (and ``latest.json``) and ``BENCHMARKS.md``.
"""
