"""Reference codecs: the extremely compressed reference image."""
