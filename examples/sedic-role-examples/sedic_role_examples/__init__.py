"""Example sedic-kit plugins: one complete minimal module per role (see CONTRIBUTING.md)."""
