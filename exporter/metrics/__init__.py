"""What ``/metrics`` says: every family declared once, as data, and the scrape that joins them.

Imports ``track``, ``store``, ``cron`` and ``health``; :mod:`exporter.metrics.registry` lists
every family the exporter emits, in scrape order.
"""
