"""Time as the CronJob controller computes it: cron grammar, slot arithmetic, Go durations.

Pure functions and values only; imports nothing of the exporter.
"""
