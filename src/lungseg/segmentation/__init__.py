"""Lung segmentation: pure functions on arrays with physical parameters, and one short pipeline."""
