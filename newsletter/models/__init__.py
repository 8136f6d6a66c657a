"""The database models, one noun per module."""
from .api_key import ApiKey
from .audit_event import AuditEvent
from .campaign import Campaign, CampaignStatus, campaign_lists
from .delivery import Delivery, DeliveryStatus
from .delivery_attempt import DeliveryAttempt
from .consent import ConsentAction, ConsentRecord, ConsentSource
from .engagement import (CampaignLink, EngagementBatch, EngagementCount, EngagementDomainCount, EngagementEvent,
                         EngagementKind, EngagementReasonCount, EngagementUnique, EngagementUniqueCount, Tracking)
from .layout import Layout
from .import_job import ImportJob, ImportMode, ImportStatus
from .mailing_list import MailingList, OptIn
from .notification import Notification, NotificationStatus
from .subscriber import Subscriber, SubscriberStatus
from .subscription import Subscription, SubscriptionStatus
from .suppression import Suppression, SuppressionReason
from .setting import Setting
from .template import Template
from .user import Role, User
from .webhook import EVENTS as WEBHOOK_EVENTS, Webhook, WebhookDelivery, WebhookDeliveryStatus

__all__ = [
    "ApiKey", "Campaign", "CampaignStatus", "campaign_lists", "Delivery", "DeliveryStatus", "Layout",
    "ConsentAction", "ConsentRecord", "ConsentSource", "ImportJob", "ImportMode",
    "ImportStatus", "MailingList", "OptIn", "Role", "Subscriber", "SubscriberStatus",
    "Subscription", "SubscriptionStatus", "Suppression", "SuppressionReason", "User",
    "Notification", "NotificationStatus", "Template", "WEBHOOK_EVENTS", "Webhook", "WebhookDelivery",
    "WebhookDeliveryStatus", "AuditEvent", "DeliveryAttempt", "Setting", "CampaignLink", "EngagementBatch",
    "EngagementCount", "EngagementDomainCount", "EngagementEvent", "EngagementKind", "EngagementReasonCount",
    "EngagementUnique", "EngagementUniqueCount", "Tracking",
]
