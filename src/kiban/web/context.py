"""What every request handler can reach: storage, the clock, and the services."""

from __future__ import annotations

from dataclasses import dataclass

from kiban.core.clock import Clock
from kiban.platform.auth import Accounts
from kiban.platform.db import Database
from kiban.platform.settings import Settings
from kiban.platform.tenants import Municipalities
from kiban.registry.service import Registry
from kiban.standard.service import Standard, settings_errors
from kiban.talent.service import Talent


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    accounts: Accounts
    municipalities: Municipalities
    registry: Registry
    talent: Talent
    standard: Standard

    @classmethod
    def build(cls, settings: Settings, clock: Clock, db: Database | None = None) -> Services:
        db = db or Database(settings)
        municipalities = Municipalities(db, settings_errors)
        return cls(settings=settings, db=db, clock=clock, accounts=Accounts(db, settings.secret_key),
                   municipalities=municipalities, registry=Registry(db, clock),
                   talent=Talent(db, clock, municipalities),
                   standard=Standard(db, clock, municipalities))
