"""DeepExpr backend: face perception, expression networks, retrieval and sequences, served over stdio."""

__version__ = "0.1.0"
