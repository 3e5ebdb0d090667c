"""Engines: where publications, history and presence live (memory or Redis)."""
