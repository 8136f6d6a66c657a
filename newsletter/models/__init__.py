"""The database models, one noun per module."""
from .api_key import ApiKey
from .campaign import Campaign, CampaignStatus, campaign_lists
from .delivery import Delivery, DeliveryStatus
from .consent import ConsentAction, ConsentRecord, ConsentSource
from .layout import Layout
from .import_job import ImportJob, ImportMode, ImportStatus
from .mailing_list import MailingList, OptIn
from .subscriber import Subscriber, SubscriberStatus
from .subscription import Subscription, SubscriptionStatus
from .suppression import Suppression, SuppressionReason
from .user import Role, User

__all__ = [
    "ApiKey", "Campaign", "CampaignStatus", "campaign_lists", "Delivery", "DeliveryStatus", "Layout",
    "ConsentAction", "ConsentRecord", "ConsentSource", "ImportJob", "ImportMode",
    "ImportStatus", "MailingList", "OptIn", "Role", "Subscriber", "SubscriberStatus",
    "Subscription", "SubscriptionStatus", "Suppression", "SuppressionReason", "User",
]
