"""boxoffice: an open ticket platform for events and trains."""

__version__ = "0.1.0"
