"""What every request handler can reach: storage, the clock, and the services."""

from __future__ import annotations

from dataclasses import dataclass, field

from kiban.assist.service import Assist
from kiban.core.clock import Clock
from kiban.linkage.service import Hub
from kiban.platform.auth import Accounts
from kiban.platform.db import Database
from kiban.platform.settings import Settings
from kiban.platform.tenants import Municipalities
from kiban.privacy.service import Privacy
from kiban.procedures.life_events import LifeEvents
from kiban.procedures.service import Procedures
from kiban.registry.service import Registry
from kiban.standard.service import Standard, settings_errors
from kiban.talent.service import Talent
from kiban.tax.assessment import Assessments
from kiban.tax.calculator import TaxCalculator  # the municipality's tax settings


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
    procedures: Procedures = field(init=False)  # online procedures (issue 7), built from the above
    life_events: LifeEvents = field(init=False)  # moving and birth (issue 7 parts 4-5), from the above

    def __post_init__(self) -> None:
        self.procedures = Procedures(self.settings, self.db, self.clock, self.registry, self.municipalities,
                                     self.linkage, self.assessments)
        self.life_events = LifeEvents(self.settings, self.db, self.clock, self.registry, self.municipalities,
                                      self.linkage, self.procedures)

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
                   assessments=Assessments(db, clock, registry, municipalities,
                                           options_for=TaxCalculator(db, clock).options),
                   assist=Assist(db, clock, municipalities))
