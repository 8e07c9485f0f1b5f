"""Generating new sounds from a trained VAE (seed 001): sampling, Griffin-Lim, latent walks and their measures."""
