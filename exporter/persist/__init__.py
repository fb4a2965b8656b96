"""Checkpoints: what the exporter cannot rebuild from the cluster, kept across restarts.

``encoding`` turns the trackers' and renderers' state into plain JSON data and back, refusing
anything it did not write; ``backends`` store the compressed bytes in a file or in
ConfigMaps; ``checkpointing`` decides when to write and applies a checkpoint at start-up.
"""
