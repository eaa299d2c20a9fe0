"""radbridge.gateway (see DESIGN.md layers)."""
