"""minirun: what ``docker run hello-world`` does, in one daemonless Python program."""

__version__ = "0.1.0"
