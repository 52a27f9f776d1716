"""caregrid: the platform that runs a tight-knit integrated medical group.

One sub-package per capability; see the docstring of each for what it owns and which
other domains it calls. Imports flow one way (checked by import-linter):
core -> identity/audit -> registry/profiles -> record -> later domains -> demo/web.
"""

__version__ = "0.1.0"
