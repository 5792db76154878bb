"""devloop: the inner dev loop for multi-service apps on Kubernetes."""

__version__ = "0.1.0"
