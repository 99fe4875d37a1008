"""The Kubernetes API part of the cockpit: its source, its snapshot data and its findings."""
