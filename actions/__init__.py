"""Guarded actions (guard → plan → confirm → execute → verify) and the audit trail."""
