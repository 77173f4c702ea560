"""The ``sensocto-lab`` command line."""
