"""Policies: read YAML with positions, check its shape, compile every CEL expression once."""
