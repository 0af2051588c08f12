"""Presentation: exports, figures and the seed-study report, over the product's records."""
