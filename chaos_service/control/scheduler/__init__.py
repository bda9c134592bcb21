"""Game days: experiments started on a cron schedule, each fire time served once across replicas,
with the results posted to a webhook.

`GameDays` is the service every replica runs; `chaos_service.control.scheduler.cron` parses
schedules and answers "when does it fire" for the API.
"""

from chaos_service.control.scheduler.cron import (
    latest_fire_time,
    missed_fire_time,
    next_fire_times,
    parse_schedule,
    upcoming,
)
from chaos_service.control.scheduler.gamedays import GameDays, RunLauncher, worst
from chaos_service.control.scheduler.webhook import notify

__all__ = [
    "GameDays",
    "RunLauncher",
    "latest_fire_time",
    "missed_fire_time",
    "next_fire_times",
    "notify",
    "parse_schedule",
    "upcoming",
    "worst",
]
