"""Running the exporter: settings, wiring, the HTTP endpoints, securing them, the lifecycle.

The top layer below ``cli``: the only one that knows :class:`~exporter.app.settings.Settings`
and turns it into the explicit parameters the lower layers take.
"""
