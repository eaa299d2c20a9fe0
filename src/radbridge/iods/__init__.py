"""radbridge.iods (see DESIGN.md layers)."""
