"""The course data folder: ``prepare.py`` imports the course files here (git-ignored)."""
