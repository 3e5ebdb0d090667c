"""api package. Importing it registers every API method, the map ones included."""

from rotary.api import maps as _maps  # noqa: F401 - registers map_* into the executor
