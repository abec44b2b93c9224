"""Reusable torch building blocks (attention, calendar marks) shared by the transformer models."""
