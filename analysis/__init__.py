"""Activation-outlier analysis of trained models (handout 8): `outliers` (the statistics and
the command line, `python -m analysis.outliers`) and `plots` (its figures)."""
