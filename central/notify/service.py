"""Start-up of the notifier from the central's settings (None without notify.yaml)."""

from __future__ import annotations

from collections.abc import Sequence

from central.config import CentralSettings
from central.errors import ConfigError
from central.institution import InstitutionConfig
from central.notify.config import build_channels, load_notify
from central.notify.notifier import Notifier
from central.notify.queue import NotifyQueue
from protocols.clock import Clock


def open_notifier(settings: CentralSettings, institutions: Sequence[InstitutionConfig],
                  clock: Clock, secret: str) -> Notifier | None:
    """The notifier of `settings.notify_config`: the file validated, every secret read,
    every institution it names known (`ConfigError` otherwise), its queue file opened next
    to the database. Acknowledgement links are signed with a key derived from `secret`."""
    if settings.notify_config is None:
        return None
    config = load_notify(settings.notify_config)
    known = {i.institution.id for i in institutions}
    unknown = [(f"institutions.{iid}", iid, f"not an institution of this central (known: "
                                             f"{', '.join(sorted(known))})")
               for iid in config.institutions if iid not in known]
    if unknown:
        raise ConfigError(str(settings.notify_config), unknown)
    channels = build_channels(config)
    queue = NotifyQueue(settings.database.with_name(
        settings.database.stem + ".notify.sqlite"))
    return Notifier(config, channels, queue, clock, link_secret=secret.encode())
