"""The client side of messaging: the bus every component runs, its store, its broker URL."""
