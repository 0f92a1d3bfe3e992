"""Hydra: the entry point, the sweepers, the sweep-status callback and search."""
