# Every target creates or updates .venv itself, so each works as the first command on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
QT_ENV := QT_QPA_PLATFORM=offscreen
# Debian packages Qt needs at run time (offscreen too) and for sound (QtMultimedia -> libpulse)
DEB_PACKAGES := libgl1 libegl1 libxkbcommon0 libfontconfig1 libdbus-1-3 libglib2.0-0 libpulse0

.PHONY: demo test bench soak package example-db screenshot clean deb-deps

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

deb-deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

demo: deb-deps $(STAMP)
	$(VENV)/bin/ketmonitor demo

test: deb-deps $(STAMP)
	@echo "== core tests with Qt, pyqtgraph and pyserial made unimportable (an auditor's machine)"
	KETMONITOR_BLOCK_QT=1 $(PY) -m pytest tests/core -q -p no:pytest-qt -W ignore::pytest.PytestConfigWarning
	@echo "== the whole suite"
	$(QT_ENV) $(PY) -m pytest

bench: deb-deps $(STAMP)
	$(QT_ENV) $(PY) -m benchmarks

soak: deb-deps $(STAMP)
	$(QT_ENV) $(PY) -m benchmarks.soak

example-db: $(STAMP)
	$(PY) -m ketmonitor.example_db sessions.db.example

screenshot: deb-deps $(STAMP)
	rm -f /tmp/ketmonitor-screenshot.db*
	$(QT_ENV) $(VENV)/bin/ketmonitor demo --screenshot docs/monitor.png --minutes 45 --scenario hypertensive-surge --protocol esketamine-intranasal --db /tmp/ketmonitor-screenshot.db

# The X11 helper libraries the xcb platform plugin links to are installed so the bundle carries them;
# pulseaudio lets the smoke test record the frozen app's alarm tones from a private null sink.
# The bundle is smoke-tested as soon as it is built (KETMONITOR_BUNDLE: a missing bundle fails).
package: deb-deps $(STAMP)
	$(MAKE) --no-print-directory deb-deps DEB_PACKAGES="libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libwayland-cursor0 libwayland-egl1 pulseaudio pulseaudio-utils"
	$(PY) -m pip install -q -e '.[package]'
	$(PY) packaging/build.py
	@echo "== smoke test of the built bundle"
	KETMONITOR_BUNDLE=dist/ketmonitor $(QT_ENV) $(PY) -m pytest tests/test_bundle_smoke.py -q -ra

clean:
	rm -rf $(VENV) build dist *.egg-info
