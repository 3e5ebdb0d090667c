"""Channel names, namespaces and their options."""
