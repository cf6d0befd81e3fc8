"""The import hub Alembic reads: every area's tables, on one metadata."""

from app.accounts.models import ThrottleBucket, User, UserSession
from app.db.base import Base
from app.mail.models import Email
from app.worker.models import Job

__all__ = ["Base", "Email", "Job", "ThrottleBucket", "User", "UserSession"]
