"""Byte-exact device emulators on pseudo-terminals (see base.py)."""
