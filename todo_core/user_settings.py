"""A user's settings: what applies to all of their tasks unless a task says otherwise."""

from __future__ import annotations

from dataclasses import dataclass

from todo_core import time_zones
from todo_core.errors import ValidationFailed


@dataclass(frozen=True, slots=True)
class UserSettings:
    """A user's settings; a user who never saved any has these defaults."""

    #: The zone a new task takes when it names none (see `todo_core.time_zones`).
    time_zone: str = time_zones.DEFAULT

    def validated(self) -> UserSettings:
        """Return the settings as they are.

        :raises ValidationFailed: a setting breaks a rule.
        """
        error = time_zones.zone_error("time_zone", self.time_zone)
        if error:
            raise ValidationFailed(error)
        return self
