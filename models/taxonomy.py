"""The labels the models speak: sentiment, event types, and 8-K items that name events."""

from __future__ import annotations

SENTIMENT: tuple[str, ...] = ("negative", "neutral", "positive")

# The 20 topics of Twitter Financial News Topic: what the event head is trained on.
TOPICS: tuple[str, ...] = (
    "analyst_update",
    "fed_central_banks",
    "company_product_news",
    "treasuries_corporate_debt",
    "dividend",
    "earnings",
    "energy_oil",
    "financials",
    "currencies",
    "general_news_opinion",
    "gold_metals_materials",
    "ipo",
    "legal_regulation",
    "m_and_a_investments",
    "macro",
    "markets",
    "politics",
    "personnel_change",
    "stock_commentary",
    "stock_movement",
)

# Event types read straight from a filing's 8-K items; no labelled text exists for them.
SEC_ITEM_EVENTS: dict[str, str] = {
    "1.01": "material_agreement",
    "1.02": "agreement_terminated",
    "1.03": "bankruptcy",
    "1.05": "cybersecurity_incident",
    "2.01": "acquisition_disposition",
    "2.02": "results",
    "2.03": "debt_obligation",
    "2.04": "debt_acceleration",
    "2.05": "restructuring",
    "2.06": "impairment",
    "3.01": "delisting",
    "3.03": "rights_modified",
    "4.01": "auditor_change",
    "4.02": "restatement",
    "5.01": "control_change",
    "5.02": "officer_change",
    "5.03": "bylaws_change",
    "5.07": "shareholder_vote",
    "7.01": "reg_fd_disclosure",
    "8.01": "other_event",
}

NO_EVENT = "none"

EVENT_TYPES: tuple[str, ...] = (
    *TOPICS,
    *dict.fromkeys(SEC_ITEM_EVENTS.values()),
    NO_EVENT,
)

TASKS: dict[str, tuple[str, ...]] = {"sentiment": SENTIMENT, "event": TOPICS}


def event_from_items(items: list[str]) -> str | None:
    """Return the event type of the first 8-K item that names one, else None."""
    for item in items:
        if item in SEC_ITEM_EVENTS:
            return SEC_ITEM_EVENTS[item]
    return None
