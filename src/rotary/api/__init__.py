"""api package. Importing it registers every API method, the map ones included."""

from rotary.api import maps as _maps  # noqa: F401 - registers map_* into the executor
from rotary.api import shared_poll as _shared_poll  # noqa: F401 - registers shared_poll_publish
