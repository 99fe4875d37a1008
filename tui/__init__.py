"""The application: CLI, configuration lookup, the Textual App and its screens."""
