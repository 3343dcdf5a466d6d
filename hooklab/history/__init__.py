"""Tools over captured requests: replay, diff and lint."""
