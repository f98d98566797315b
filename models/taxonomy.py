"""The labels the models speak: sentiment, event types, and 8-K items that name events."""

from __future__ import annotations

from typing import NamedTuple

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


class Item8K(NamedTuple):
    """One item of Form 8-K: its standard heading and the event type it names, if any."""

    heading: str
    event: str | None = None


# Every 8-K item, by number. Events are read straight from a filing's items; no labelled
# text exists for them.
ITEMS_8K: dict[str, Item8K] = {
    "1.01": Item8K("Entry into a Material Definitive Agreement", "material_agreement"),
    "1.02": Item8K("Termination of a Material Definitive Agreement", "agreement_terminated"),
    "1.03": Item8K("Bankruptcy or Receivership", "bankruptcy"),
    "1.04": Item8K("Mine Safety - Reporting of Shutdowns and Patterns of Violations"),
    "1.05": Item8K("Material Cybersecurity Incidents", "cybersecurity_incident"),
    "2.01": Item8K("Completion of Acquisition or Disposition of Assets", "acquisition_disposition"),
    "2.02": Item8K("Results of Operations and Financial Condition", "results"),
    "2.03": Item8K("Creation of a Direct Financial Obligation", "debt_obligation"),
    "2.04": Item8K(
        "Triggering Events That Accelerate or Increase a Direct Financial Obligation",
        "debt_acceleration",
    ),
    "2.05": Item8K("Costs Associated with Exit or Disposal Activities", "restructuring"),
    "2.06": Item8K("Material Impairments", "impairment"),
    "3.01": Item8K(
        "Notice of Delisting or Failure to Satisfy a Continued Listing Rule", "delisting"
    ),
    "3.02": Item8K("Unregistered Sales of Equity Securities"),
    "3.03": Item8K("Material Modification to Rights of Security Holders", "rights_modified"),
    "4.01": Item8K("Changes in Registrant's Certifying Accountant", "auditor_change"),
    "4.02": Item8K("Non-Reliance on Previously Issued Financial Statements", "restatement"),
    "5.01": Item8K("Changes in Control of Registrant", "control_change"),
    "5.02": Item8K(
        "Departure of Directors or Certain Officers; Election of Directors", "officer_change"
    ),
    "5.03": Item8K(
        "Amendments to Articles of Incorporation or Bylaws; Change in Fiscal Year",
        "bylaws_change",
    ),
    "5.04": Item8K("Temporary Suspension of Trading Under Registrant's Employee Benefit Plans"),
    "5.05": Item8K("Amendments to the Registrant's Code of Ethics"),
    "5.06": Item8K("Change in Shell Company Status"),
    "5.07": Item8K("Submission of Matters to a Vote of Security Holders", "shareholder_vote"),
    "5.08": Item8K("Shareholder Director Nominations"),
    "7.01": Item8K("Regulation FD Disclosure", "reg_fd_disclosure"),
    "8.01": Item8K("Other Events", "other_event"),
    "9.01": Item8K("Financial Statements and Exhibits"),
}

# The items that name an event, and the event each names.
SEC_ITEM_EVENTS: dict[str, str] = {n: i.event for n, i in ITEMS_8K.items() if i.event}

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
