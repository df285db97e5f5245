"""What every request handler can reach: storage, the clock, and the services."""

from __future__ import annotations

from dataclasses import dataclass

from kiban.assist.service import Assist
from kiban.core.clock import Clock
from kiban.linkage.service import Hub
from kiban.platform.auth import Accounts
from kiban.platform.db import Database
from kiban.platform.settings import Settings
from kiban.platform.tenants import Municipalities
from kiban.privacy.service import Privacy
from kiban.registry.service import Registry
from kiban.standard.service import Standard, settings_errors
from kiban.talent.service import Talent
from kiban.tax.assessment import Assessments


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
    linkage: Hub
    privacy: Privacy
    assessments: Assessments
    assist: Assist

    @classmethod
    def build(cls, settings: Settings, clock: Clock, db: Database | None = None) -> Services:
        db = db or Database(settings)
        municipalities = Municipalities(db, settings_errors)
        registry = Registry(db, clock)
        return cls(settings=settings, db=db, clock=clock, accounts=Accounts(db, settings.secret_key),
                   municipalities=municipalities, registry=registry,
                   talent=Talent(db, clock, municipalities),
                   standard=Standard(db, clock, municipalities),
                   linkage=Hub(settings, db, clock, registry),
                   privacy=Privacy(db, clock),
                   assessments=Assessments(db, clock, registry, municipalities),
                   assist=Assist(db, clock, municipalities))
