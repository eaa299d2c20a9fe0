"""radbridge.models (see DESIGN.md layers)."""
