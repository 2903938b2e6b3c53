"""One case module per part, `<part>.py` (see `autograder/case.py`): its visible cases ship
with the handout, its staff block (hidden cases, mutants) does not."""
