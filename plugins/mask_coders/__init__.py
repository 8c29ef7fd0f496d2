"""Mask coders: lossless coding of the object masks on the latent grid."""
