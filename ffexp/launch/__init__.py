"""Hydra: the entry point (the one composition root), the sweepers, the sweep-status and
tracked-sweep callbacks, and search."""
