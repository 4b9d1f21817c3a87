"""Study files -> validated, fully resolved objects; errors name the file, key and expectation.

pydantic is used only inside this package; what comes out is plain frozen dataclasses and a
:class:`~mexplore.space.Space`, so other rooms never depend on the validation library.
"""

from .cache import CacheSection
from .study import (
    AlgorithmSection,
    ModelSection,
    Study,
    StudyFileProblem,
    StudySection,
    UnreadableStudyFile,
    load_study,
    space_from_table,
)

__all__ = [
    "AlgorithmSection",
    "CacheSection",
    "ModelSection",
    "Study",
    "StudyFileProblem",
    "StudySection",
    "UnreadableStudyFile",
    "load_study",
    "space_from_table",
]
