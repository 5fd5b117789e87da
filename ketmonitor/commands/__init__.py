"""Subcommands of the ``ketmonitor`` CLI, one module each (see ketmonitor/cli.py)."""
