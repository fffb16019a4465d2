"""LMQL's runtime modules (`lmql.runtime`) as far as LMQL's documentation imports them
from programs: `program_state` (the type of a decorator's `context`)."""
