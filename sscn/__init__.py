"""SSCN: exemplar-based colorization with a Semantic-Sparse Colorization Network."""

__version__ = "0.1.0"
