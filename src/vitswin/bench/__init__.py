"""Benchmarks: what models, the input pipeline and the training engine cost on this machine."""
