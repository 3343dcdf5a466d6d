"""The HTTP side: the receiver, the management API and `hooklab serve`."""
