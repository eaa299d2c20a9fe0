"""radbridge.io (see DESIGN.md layers)."""
