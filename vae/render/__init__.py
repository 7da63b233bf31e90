"""Arrays to pictures and figures: images, tiles and PNG bytes (images.py), the class colours (palette.py),
plot coordinates and ticks (axes.py), plotly figures (figures.py) and PIL pictures and GIFs (pictures.py)."""
