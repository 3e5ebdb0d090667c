"""Connection and subscription JWT verification: pure, with time passed in."""
