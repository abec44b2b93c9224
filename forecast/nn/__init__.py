"""Torch blocks shared by the transformer models: attention, calendar marks, position encoding, sizes."""
