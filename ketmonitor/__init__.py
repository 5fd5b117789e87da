"""ketmonitor core: session model, store, alarms, signing, export and CLI.

The core imports neither Qt nor pyserial; device drivers and the UI depend on it, never the reverse.
"""

__version__ = "0.1.0"
