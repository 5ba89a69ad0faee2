"""Benchmarks of learning-machines: retrieval quality, speed and scale, cost per turn.

Modules are imported on demand (``learning_machines.bench.latency``, ``learning_machines.bench.cost``
…); they need the ``bench`` extra for plots (``pip install "learning-machines[bench]"``).
"""
