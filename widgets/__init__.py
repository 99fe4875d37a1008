"""Panes and dialogs: they render snapshots and post messages; they do no I/O."""
