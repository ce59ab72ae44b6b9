"""Prometheus metrics: counts and latencies only, never patient data in labels."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_SENT = Counter("cryo_messages_sent_total", "Messages sent to Telegram", ["kind"])
MESSAGES_FAILED = Counter("cryo_messages_failed_total", "Messages Telegram refused", ["reason"])
ANSWERS_SAVED = Counter("cryo_answers_saved_total", "Patient answers saved", ["kind"])
ALERTS_RAISED = Counter("cryo_alerts_raised_total", "Alerts raised", ["severity"])
ALERT_DELIVERY_FAILURES = Counter(
    "cryo_alert_delivery_failures_total", "Failed attempts to post an alert to staff", ["reason"]
)
ALERT_ACK_SECONDS = Histogram(
    "cryo_alert_ack_seconds",
    "Time from alert to acknowledgement",
    buckets=(60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600),
)
ALERTS_OPEN = Gauge("cryo_alerts_open", "Alerts not yet resolved")
DISPATCHER_LAG = Gauge("cryo_dispatcher_lag_seconds", "Age of the oldest due, unsent check-in")
URGENT_UNACKNOWLEDGED = Gauge(
    "cryo_urgent_alert_unacknowledged_seconds",
    "Age of the oldest open urgent or emergency alert nobody has acknowledged (0 when none)",
)
UP_SINCE = Gauge("cryo_started_timestamp_seconds", "When this bot process started (Unix time)")
DEAD_LETTERS = Counter(
    "cryo_dead_letters_total", "Updates set aside because they could not be read or handled"
)
UPDATES_RETRIED = Counter(
    "cryo_updates_retried_total", "Runs of an update repeated after a failure (outage or bug)"
)
POLLING_RESTARTS = Counter(
    "cryo_polling_restarts_total", "Times the polling loop failed and was started again", ["reason"]
)
STAFF_CHAT_REACHABLE = Gauge(
    "cryo_staff_chat_reachable",
    "1 while the bot can post in the team chat (staff, oncall); 0 once Telegram refused it for good",
    ["chat"],
)
SQLITE_WRITE_GATE_BYPASSED = Counter(
    "cryo_sqlite_write_gate_bypassed_total",
    "SQLite writers that waited too long for the write gate and went on without it",
)
