"""Search algorithms: the ask/tell interface, the registry of names, and the built-ins."""

from .base import Algorithm, StudyInfo
from .registry import available, resolve

__all__ = ["Algorithm", "StudyInfo", "available", "resolve"]
