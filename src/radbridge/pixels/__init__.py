"""radbridge.pixels (see DESIGN.md layers)."""
