"""The backends that come with lmql_nb: a list of what each folder declares.

Each backend folder (`transformers/`, `llamacpp/`, `openai/`) declares its own
`REGISTRATION`: its id prefix, its `create(model_id, name, options)` factory, its options
class and how its ids read in errors and docs. The registry registers these the way it
registers any other package's backend; a new built-in backend is one folder plus one
entry here.
"""

from __future__ import annotations

from . import llamacpp, openai, transformers
from .base import EndpointRegistration, Registration
from .endpoints import jupyter_connect

#: the built-in backends, in the order their id forms are listed
BACKENDS: tuple[Registration, ...] = (transformers.REGISTRATION, llamacpp.REGISTRATION,
                                      openai.REGISTRATION)
#: the backend `endpoint=` models use: the OpenAI-compatible client
ENDPOINT_CLIENT: Registration = openai.ENDPOINT_CLIENT
#: named endpoints
ENDPOINTS: tuple[EndpointRegistration, ...] = (
    EndpointRegistration("jupyter", jupyter_connect,
                         "a 'local:...' model served by the Jupyter server extension"),
)
