"""Acquisition: parsers (bytes -> frames), drivers (serial sources), emulators and simulators.

Depends on the core (ketmonitor) and pyserial; never on Qt.
"""
