"""Shared code of the Skribble callback receiver's Lambda functions."""
