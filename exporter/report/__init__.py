"""What a person reads: each owner's status, from the records the metrics are rendered from."""
