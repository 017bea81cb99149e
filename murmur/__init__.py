"""murmur."""
