"""The `murmur` command: one entry point that dispatches to each part of Murmuration."""
