"""healthhut: the gateway in a community health hut (version only; nothing heavy is imported here)."""

__version__ = "0.1.0"
