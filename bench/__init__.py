"""Benchmarks of ``chaos-service engine`` against direct connections (``python -m bench.engine``).

Every benchmark measures the same workload directly and through an engine proxy in the same
run, alternating the two, and reports medians. Traffic generators run in their own processes
(`bench.workers`, `bench.stream_workers`) so that neither they nor the engine share a GIL with the code measuring them.
"""
