"""Local emulators of the source APIs, faithful to the documented contracts.

Each emulator is a FastAPI app built by ``create_app(dataset_dir, ...)`` that serves the demo
company's records (see docs/demo-dataset.md) with the real API's paging, quotas, errors and
request lifecycle. Tests start one in a thread with :func:`server.running`; the demo starts
them all with ``python -m customer_warehouse.emulators``. Faults (429 with Retry-After, 5xx
bursts, resets, truncated bodies, blocked accounts) are injected with :mod:`.faults`.
"""
