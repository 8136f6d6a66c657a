"""The database models, one noun per module."""
from .ab_test import VARIANT_LABELS, AbMetric, AbMode, AbVariant
from .api_key import ApiKey
from .audit_event import AuditEvent
from .automation import (
                         Automation,
                         AutomationEngagement,
                         AutomationEvent,
                         AutomationLink,
                         AutomationStatus,
                         AutomationStep,
                         Enrollment,
                         EnrollmentState,
                         StepExecution,
                         StepKind,
                         TriggerKind,
)
from .bounce import Bounce, BounceType
from .campaign import BodyFormat, Campaign, CampaignStatus, ResendTo, campaign_lists
from .campaign_template import CampaignTemplate
from .campaign_translation import CampaignTranslation
from .consent import ConsentAction, ConsentRecord, ConsentSource
from .delivery import Delivery, DeliveryStatus
from .delivery_attempt import DeliveryAttempt
from .dkim_key import DkimAlgorithm, DkimKey, DkimKeyStatus
from .engagement import (
                         CampaignLink,
                         EngagementBatch,
                         EngagementCount,
                         EngagementDomainCount,
                         EngagementEvent,
                         EngagementKind,
                         EngagementReasonCount,
                         EngagementUnique,
                         EngagementUniqueCount,
                         Tracking,
)
from .import_job import ImportJob, ImportMode, ImportStatus
from .layout import Layout
from .mailing_list import MailingList, OptIn
from .notification import Notification, NotificationKind, NotificationStatus
from .segment import Segment, campaign_segments
from .sending_server import SendingServer
from .setting import Setting
from .subscriber import Subscriber, SubscriberStatus
from .subscription import Subscription, SubscriptionStatus
from .suppression import Suppression, SuppressionReason
from .template import Template
from .user import Role, User
from .webhook import EVENTS as WEBHOOK_EVENTS
from .webhook import Webhook, WebhookDelivery, WebhookDeliveryStatus

__all__ = [
    "ApiKey", "Bounce", "BounceType", "BodyFormat", "CampaignTemplate",
    "Campaign", "CampaignStatus", "ResendTo", "campaign_lists", "Delivery", "DeliveryStatus", "Layout",
    "ConsentAction", "ConsentRecord", "ConsentSource", "ImportJob", "ImportMode",
    "ImportStatus", "MailingList", "OptIn", "Role", "Subscriber", "SubscriberStatus",
    "Subscription", "SubscriptionStatus", "Suppression", "SuppressionReason", "User",
    "Notification", "NotificationKind", "NotificationStatus", "Template", "WEBHOOK_EVENTS", "Webhook",
    "WebhookDelivery", "WebhookDeliveryStatus", "AuditEvent", "DeliveryAttempt", "SendingServer", "Setting",
    "CampaignLink",
    "EngagementBatch", "EngagementCount", "EngagementDomainCount", "EngagementEvent", "EngagementKind",
    "EngagementReasonCount", "EngagementUnique", "EngagementUniqueCount", "Tracking", "DkimAlgorithm", "DkimKey",
    "DkimKeyStatus", "Segment", "campaign_segments", "AbMetric", "AbMode", "AbVariant", "VARIANT_LABELS",
    "CampaignTranslation",
    "Automation", "AutomationEngagement", "AutomationEvent", "AutomationLink", "AutomationStatus", "AutomationStep",
    "Enrollment", "EnrollmentState",
    "StepExecution", "StepKind", "TriggerKind",
]
