"""Configuration: one immutable model, loaded from file, environment and flags."""
