"""What exists in the cluster now: raw objects projected into small typed records, and caches.

The edge of the exporter: the only layer that reads object bodies. It depends on ``cron``
(schedules are parsed when a CronJob is projected) and ``health``, never on ``kube``: the
watchers write into :class:`~exporter.store.caching.ObjectCache` through kube's ``Sink``
interface, which the cache satisfies.
"""
