"""Talking to the API server: credentials, and the list+watch loops that keep caches current.

Imports only ``health``. The watchers write to the small :class:`~exporter.kube.watching.Sink`
interface, so this layer knows nothing of records or projection.
"""
