"""What happened over time, which the cluster forgets: run history per owner and CronJob slots.

Trackers follow the store's caches, turn *transitions* into state of their own (counters,
histograms, cursors) and publish their records the same way a cache does, so the metrics
layer renders them like any other record. Imports ``store``, ``cron`` and ``health``.
"""
