"""Inference with a trained model: inverse (variational auto-decoder) estimation of sources and classes."""
