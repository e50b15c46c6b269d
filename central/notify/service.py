"""Start-up of the notifier from the central's settings (None without notify.yaml)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from central.config import CentralSettings
from central.errors import ConfigError
from central.institution import InstitutionConfig
from central.ledger import Ledger
from central.notify.config import build_channels, load_notify
from central.notify.digest import DigestTenant, MetricsDigestSource
from central.notify.notifier import Notifier
from central.notify.queue import NotifyQueue
from central.profile import CoefficientProfile
from central.store import Store
from central.storeport import StoreReader
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


def digest_source(reader: StoreReader | Path,
                  tenants: Sequence[tuple[InstitutionConfig, CoefficientProfile, Ledger | None]],
                  ) -> MetricsDigestSource:
    """The digest's figures from the central's stores: a read-only SQLite `Store` per
    digest, or the shared PostgreSQL reader."""

    def open_store() -> AbstractContextManager[StoreReader]:
        if isinstance(reader, Path):
            return Store(reader, readonly=True)
        return contextlib.nullcontext(reader)

    return MetricsDigestSource(open_store, {c.institution.id: DigestTenant(c, p, ledger)
                                            for c, p, ledger in tenants})
