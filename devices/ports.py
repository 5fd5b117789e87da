"""Serial port discovery for the device setup screen: plain dataclasses, no pyserial types leak."""

from __future__ import annotations

from dataclasses import dataclass

from serial.tools import list_ports as _list_ports


@dataclass(frozen=True, slots=True)
class PortInfo:
    device: str  # what to open: /dev/ttyUSB0, COM3, ...
    description: str = ""
    hwid: str = ""
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    location: str | None = None

    @property
    def label(self) -> str:
        """A line for a port picker: device and the most telling description."""
        extra = self.description if self.description and self.description != "n/a" else ""
        if not extra and self.manufacturer:
            extra = self.manufacturer
        return f"{self.device} — {extra}" if extra else self.device

    @property
    def usb(self) -> bool:
        return self.vid is not None


# USB-serial bridges the supported devices ship with (vid, pid) -> what it usually is
KNOWN_BRIDGES: dict[tuple[int, int], str] = {
    (0x10C4, 0xEA60): "Silicon Labs CP210x (Contec cable)",
    (0x0403, 0x6001): "FTDI FT232R",
    (0x0403, 0x6015): "FTDI FT231X",
    (0x067B, 0x2303): "Prolific PL2303",
    (0x1A86, 0x7523): "WCH CH340",
}


def list_ports(include_links: bool = False) -> list[PortInfo]:
    """Serial ports present now, USB ones first, each sorted by device name."""
    ports = []
    for p in _list_ports.comports(include_links=include_links):
        ports.append(PortInfo(device=p.device, description=p.description or "", hwid=p.hwid or "",
                              vid=p.vid, pid=p.pid, serial_number=p.serial_number,
                              manufacturer=p.manufacturer, product=p.product,
                              location=p.location))
    return sorted(ports, key=lambda p: (not p.usb, p.device))


def bridge_name(port: PortInfo) -> str | None:
    if port.vid is None or port.pid is None:
        return None
    return KNOWN_BRIDGES.get((port.vid, port.pid))
