"""radbridge.net (see DESIGN.md layers)."""
