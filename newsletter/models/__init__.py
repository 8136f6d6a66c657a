"""The database models, one noun per module."""
from .api_key import ApiKey
from .consent import ConsentAction, ConsentRecord, ConsentSource
from .import_job import ImportJob, ImportMode, ImportStatus
from .mailing_list import MailingList, OptIn
from .subscriber import Subscriber, SubscriberStatus
from .subscription import Subscription, SubscriptionStatus
from .suppression import Suppression, SuppressionReason
from .user import Role, User

__all__ = [
    "ApiKey", "ConsentAction", "ConsentRecord", "ConsentSource", "ImportJob", "ImportMode",
    "ImportStatus", "MailingList", "OptIn", "Role", "Subscriber", "SubscriberStatus",
    "Subscription", "SubscriptionStatus", "Suppression", "SuppressionReason", "User",
]
