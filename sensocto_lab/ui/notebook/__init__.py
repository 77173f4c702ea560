"""anywidget widgets for JupyterLab, each one JS module that also runs inside a Panel page."""
