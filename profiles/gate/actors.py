"""Who asks the gate. Every read and write names its actor, and its audit entry records it: the
person themselves, a staff member, a partner client or the system."""

import uuid
from dataclasses import dataclass
from typing import Any

from vault import crypto
from vault.models import AuditActorType


@dataclass(frozen=True)
class Actor:
    """Who is asking: the person themselves, a staff member, a partner client or the system.
    A person is named by their subject id (the audit log turns it into a pseudonym)."""

    type: str
    id: str = ""
    subject_id: uuid.UUID | None = None

    @classmethod
    def person(cls, subject_id: uuid.UUID) -> "Actor":
        return cls(AuditActorType.PERSON, subject_id=crypto.as_subject_id(subject_id))

    @classmethod
    def staff(cls, user_id: object) -> "Actor":
        return cls(AuditActorType.STAFF, id=str(user_id))

    @classmethod
    def partner(cls, client_id: str) -> "Actor":
        return cls(AuditActorType.PARTNER, id=client_id)

    @classmethod
    def system(cls, name: str) -> "Actor":
        return cls(AuditActorType.SYSTEM, id=name)

    def audit(self) -> dict[str, Any]:
        return {"actor_type": self.type, "actor_id": self.id, "actor_subject_id": self.subject_id}
