"""Metrics, one module per kind: parity (tensors), segmentation (label maps), masks (prompts)."""
