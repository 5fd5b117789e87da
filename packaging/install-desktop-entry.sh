#!/bin/sh
# Add ketmonitor to the desktop's application menu for the current user (or, run as root with
# --system, for every user). Run it from the unpacked bundle folder; it does not move the folder.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-}" = "--system" ]; then
    apps=/usr/share/applications; icons=/usr/share/icons/hicolor; bin=/usr/local/bin
else
    apps="${XDG_DATA_HOME:-$HOME/.local/share}/applications"
    icons="${XDG_DATA_HOME:-$HOME/.local/share}/icons/hicolor"; bin="$HOME/.local/bin"
fi
mkdir -p "$apps" "$icons/scalable/apps" "$icons/256x256/apps" "$bin"
cp "$here/ketmonitor.svg" "$icons/scalable/apps/ketmonitor.svg"
cp "$here/ketmonitor.png" "$icons/256x256/apps/ketmonitor.png"
ln -sf "$here/ketmonitor" "$bin/ketmonitor"
sed -e "s|^Exec=.*|Exec=\"$here/ketmonitor\"|" -e "s|^TryExec=.*|TryExec=$here/ketmonitor|" \
    "$here/ketmonitor.desktop" > "$apps/ketmonitor.desktop"
command -v update-desktop-database >/dev/null 2>&1 && update-desktop-database "$apps" || true
echo "installed: $apps/ketmonitor.desktop, icon, and $bin/ketmonitor -> $here/ketmonitor"
