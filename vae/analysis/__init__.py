"""What a model does over many inputs or codes: encoding a dataset and decoding grids (encoding.py), the plane's
geometry (geometry.py), latent usage and collapse (usage.py), disentanglement on known factors (disentangle.py),
traversals (traversals.py), and the lecture's variants and numbers (teaching.py)."""
