"""The Qt user interface: live monitor, forms, review. Everything Qt lives here, on the main thread."""
