"""The model in the browser: the op table both sides follow (ops.py), the payload Python sends (pad.py), and the
JS and CSS that run it (latent_pad.js, latent_pad.css): one source for every place the pad appears."""
