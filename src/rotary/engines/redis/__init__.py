"""redis package."""
