"""Control-plane nodes: access (SSH or local), what is read from them, and the rules over it."""
