"""Text coders: lossless coding of the caption and object descriptions."""
