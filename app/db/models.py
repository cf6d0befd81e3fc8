"""The import hub Alembic reads: every area's tables, on one metadata."""

from app.accounts.models import ThrottleBucket, User, UserSession
from app.audit.models import AuditEntry
from app.catalog.models import Creator, Item, ItemVersion, Project
from app.checkout.models import Entitlement, Order, OrderReversal, PaymentEvent
from app.db.base import Base
from app.mail.models import Email
from app.media.models import Upload
from app.payouts.models import DevClock, ItemStatsDaily, LedgerEntry, Payout, PayoutAccount, PayoutRun
from app.worker.models import Job

__all__ = [
    "AuditEntry", "Base", "DevClock", "ItemStatsDaily", "LedgerEntry", "Payout", "PayoutAccount", "PayoutRun", "Creator", "Email", "Entitlement", "Item", "ItemVersion", "Job", "Order", "OrderReversal",
    "PaymentEvent", "Project", "ThrottleBucket", "Upload", "User", "UserSession",
]
