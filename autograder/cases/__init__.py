"""Case lists: `visible.py` ships with the handout; `hidden_*.py` are staff-only."""
