"""Entry point of the frozen application (PyInstaller): the same as the ``ketmonitor`` console script."""

import sys

from ketmonitor.cli import main

if __name__ == "__main__":
    sys.exit(main())
