"""The exporter's view of its own health: the lowest layer, written by every other one.

It imports nothing of the exporter; metrics/selfmetrics.py exports it and app/serving.py
answers ``/readyz`` from it.
"""
