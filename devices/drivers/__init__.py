"""Serial drivers: one VitalsSource per protocol, built on devices.serial_source.SerialSource."""
