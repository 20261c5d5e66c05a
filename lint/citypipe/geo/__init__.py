"""Shared geo types and errors: the layer every other one builds on."""
