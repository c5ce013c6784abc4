"""Realistic CRM exports written for the tests, one per import preset, with the defects real
exports have: deals without an account, a product spelled two ways ('GTXPro' / 'GTX Pro'),
stage names of the CRM's own, a deal stale in its stage for 423 days, a reference to an
account that is not in the export, a close date before the create date, report footers,
US dates and currency amounts, a quoted value spanning two lines.

Every builder is deterministic and returns what the tests assert against (`Facts`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

AS_OF = date(2017, 12, 29)  # the generic export's last activity (its latest close date)
STALE_DAYS = 423
GTX_PRO_WON_DAYS = (38, 40, 40, 42, 45)  # median 40: the stale deal's comparison


def write_csv(
    path: Path, header: list[str], rows: Sequence[Sequence[object]], footer: str = ""
) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows([["" if v is None else v for v in row] for row in rows])
        fh.write(footer)


@dataclass
class Facts:
    """What a builder put in its export (line numbers as the file shows them)."""

    folder: Path
    lines: dict[str, int] = field(default_factory=dict)  # name -> line of a notable row
    deals: int = 0
    won: int = 0
    lost: int = 0
    without_account: list[str] = field(default_factory=list)
    gtxpro_deals: list[str] = field(default_factory=list)
    stale_deal: str = ""


# ---------------------------------------------------------------- generic pipeline


def generic_pipeline(folder: Path, *, unknown_account: bool = False) -> Facts:
    """The public "CRM sales opportunities" shape: sales_pipeline.csv + accounts.csv +
    products.csv + sales_teams.csv, stages Prospecting / Engaging / Won / Lost, close_value
    filled only on won deals."""
    folder.mkdir(parents=True, exist_ok=True)
    facts = Facts(folder)
    products = [
        ("GTX Basic", "GTX", 550),
        ("GTX Pro", "GTX", 4821),
        ("MG Special", "MG", 55),
        ("MG Advanced", "MG", 3393),
        ("GTX Plus Basic", "GTX", 1096),
    ]
    write_csv(
        folder / "products.csv", ["product", "series", "sales_price"], [list(p) for p in products]
    )
    accounts = [
        ("Cancity", "retail", 2001, "718.62", 2448, "United States"),
        ("Isdom", "medical", 2002, "3178.24", 4540, "United States"),
        ("Codehow", "software", 1998, "2714.90", 2641, "United States"),
        ("Hatfan", "services", 1982, "792.46", 1299, "United States"),
        ("Ron-tech", "medical", 1992, "3922.42", 6837, "United States"),
        ("Acme Corp", "technolgy", 1985, "1100.04", 1622, "United States"),
        ("ACME Corp.", "technolgy", 1985, "1100.04", 1622, "United States"),
        ("Zathunicon", "retail", 2010, "1.45", 4, "United States"),
    ]
    write_csv(
        folder / "accounts.csv",
        ["account", "sector", "year_established", "revenue", "employees", "office_location"],
        [list(a) for a in accounts],
    )
    facts.lines["account ACME Corp."] = 8
    agents = ["Moses Frase", "Darcel Schlecht", "Zane Levy", "Anna Snelling", "Vicki Laflamme"]
    write_csv(
        folder / "sales_teams.csv",
        ["sales_agent", "manager", "regional_office"],
        [[a, "Cara Losch", "East"] for a in agents],
    )
    rows: list[list[object]] = []

    def add(deal_id: str, agent: str, product: str, account: str, stage: str,
            engage: date | None, close: date | None, value: object) -> int:  # fmt: skip
        rows.append([deal_id, agent, product, account, stage, engage, close, value])
        return len(rows) + 1  # its line (header = line 1)

    start = date(2016, 10, 1)
    names = [a[0] for a in accounts if a[0] != "ACME Corp."]
    # Won GTX Pro deals: Engaging for 38..45 days (median 40), then Won.
    for i, days in enumerate(GTX_PRO_WON_DAYS):
        engage = start + timedelta(days=7 * i)
        add(f"WONPRO{i}", agents[i % 5], "GTX Pro", names[i % 7], "Won", engage,
            engage + timedelta(days=days), 4800 + i)  # fmt: skip
    # Other won and lost deals: Engaging 20..80 days; lost deals carry close_value 0.
    for i in range(30):
        engage = start + timedelta(days=5 * i)
        won = i % 2 == 0
        product = products[i % 5][0]
        if product == "GTX Pro":
            product = "MG Special"
        add(f"D{i:03d}", agents[i % 5], product, names[i % 7], "Won" if won else "Lost",
            engage, engage + timedelta(days=20 + 2 * i), 1000 + i if won else 0)  # fmt: skip
    # 'GTXPro' (the pipeline's spelling) on two won deals and one open deal.
    for i in range(2):
        engage = start + timedelta(days=40 + i)
        facts.gtxpro_deals.append(f"GTXPRO{i}")
        facts.lines[f"GTXPRO{i}"] = add(
            f"GTXPRO{i}", agents[i], "GTXPro", names[i], "Won", engage,
            engage + timedelta(days=60), 4700,
        )  # fmt: skip
    facts.gtxpro_deals.append("GTXPRO2")
    facts.lines["GTXPRO2"] = add(
        "GTXPRO2", agents[2], "GTXPro", names[2], "Engaging", AS_OF - timedelta(days=20), None, None
    )
    # A close date before the engage date.
    facts.lines["close before create"] = add(
        "BACKWARDS", agents[3], "MG Advanced", names[3], "Won", date(2017, 6, 10),
        date(2017, 6, 1), 3300,
    )  # fmt: skip
    # Open deals: recently engaged, one stale for 423 days, prospects without dates.
    for i in range(4):
        add(f"OPEN{i}", agents[i], "GTX Basic", names[i], "Engaging",
            AS_OF - timedelta(days=10 + 5 * i), None, None)  # fmt: skip
    facts.stale_deal = "STALE1"
    facts.lines["stale"] = add(
        "STALE1", agents[4], "GTX Pro", names[4], "Engaging",
        AS_OF - timedelta(days=STALE_DAYS), None, None,
    )  # fmt: skip
    for i in range(3):
        facts.without_account.append(f"NOACC{i}")
        facts.lines[f"NOACC{i}"] = add(f"NOACC{i}", agents[i], "MG Special", "", "Prospecting",
                                       None, None, None)  # fmt: skip
    facts.without_account.append("NOACC3")
    facts.lines["NOACC3"] = add("NOACC3", agents[3], "MG Special", "", "Engaging",
                                AS_OF - timedelta(days=5), None, None)  # fmt: skip
    add("PROSP1", agents[0], "GTX Basic", names[0], "Prospecting", None, None, None)
    # The last activity of the export: a won deal closing on AS_OF.
    add("LAST", agents[1], "GTX Basic", names[1], "Won", AS_OF - timedelta(days=30), AS_OF, 560)
    if unknown_account:
        facts.lines["unknown account"] = add(
            "GHOST", agents[0], "GTX Basic", "Nonexistent Co", "Won", date(2017, 1, 2),
            date(2017, 2, 1), 500,
        )  # fmt: skip
    write_csv(
        folder / "sales_pipeline.csv",
        [
            "opportunity_id",
            "sales_agent",
            "product",
            "account",
            "deal_stage",
            "engage_date",
            "close_date",
            "close_value",
        ],
        rows,
    )
    facts.deals = len(rows)
    facts.won = sum(1 for r in rows if r[4] == "Won")
    facts.lost = sum(1 for r in rows if r[4] == "Lost")
    return facts


CUSTOM_STAGES = """\
kind: deal_stages
version: 1
stages:
  - {name: Prospecting, status: open, probability: 10}
  - {name: Engaging, status: open, probability: 40}
  - {name: Won, status: won, probability: 100}
  - {name: Lost, status: lost, probability: 0}
stale_in_stage: {segment_by: [product_id], median_multiple: 2.0, min_days: 30, min_won_deals: 5}
meddpicc_status_credit: {Validated: 1.0, Identified: 1.0, Partial Understanding: 0.5}
"""
# The preset maps the export's stages onto the default model; with a stage model of the
# export's own names the mapping keeps them as they are.
KEEP_STAGE_NAMES = """\
kind: warehouse_mapping
version: 1
extends: generic-pipeline
value_maps:
  stage: {Prospecting: Prospecting, Engaging: Engaging, Won: Won, Lost: Lost}
"""


def custom_stage_rules(folder: Path, default_rules: Path) -> Path:
    """A rules folder: the default rules with stages.yaml replaced by the export's stages."""
    import shutil

    shutil.copytree(default_rules, folder)
    (folder / "stages.yaml").write_text(CUSTOM_STAGES)
    return folder


# ---------------------------------------------------------------- Salesforce

SF_FOOTER = (
    "\n"
    '"Opportunities Report"\n'
    '"Copyright (c) 2000-2024 salesforce.com, inc. All rights reserved."\n'
    '"Confidential Information - Do Not Distribute"\n'
    '"Generated By:  Jane Admin  4/2/2024 9:15 AM"\n'
    '"Acme Inc."\n'
)


def sf_id(prefix: str, n: int) -> str:
    return f"{prefix}5g00000{n:04d}AAA"


def salesforce(folder: Path) -> Facts:
    """Three report exports (accounts, opportunities, opportunity history) with footers."""
    folder.mkdir(parents=True, exist_ok=True)
    facts = Facts(folder)
    accounts = [
        [sf_id("001", i), name, kind, industry, f"{employees:,}", f"USD {revenue:,.2f}",
         "US", f"www.{name.lower().replace(' ', '')}.com", "Jane Admin", "1/15/2023"]
        for i, (name, kind, industry, employees, revenue) in enumerate(
            [
                ("Northwind Traders", "Customer", "Retail", 1200, 52_000_000),
                ("Contoso Analytics", "Prospect", "Software", 640, 88_000_000),
                ("Fabrikam Media", "Prospect", "Advertising & Marketing", 310, 21_500_000),
                ("Tailspin Toys", "Customer", "Retail", 2300, 140_000_000),
            ]
        )
    ]  # fmt: skip
    write_csv(
        folder / "sf_accounts_2024.csv",
        [
            "Account ID",
            "Account Name",
            "Type",
            "Industry",
            "Employees",
            "Annual Revenue",
            "Billing Country",
            "Website",
            "Account Owner",
            "Created Date",
        ],
        accounts,
        SF_FOOTER,
    )
    opp_header = [
        "Opportunity ID", "Opportunity Name", "Account ID", "Account Name", "Type", "Stage",
        "Amount", "Probability (%)", "Close Date", "Created Date", "Opportunity Owner",
        "Next Step", "Product Name",
    ]  # fmt: skip
    opps: list[list[object]] = []
    history: list[list[object]] = []

    def when(day: date, hour: int = 9) -> str:
        stamp = datetime(day.year, day.month, day.day, hour, 0)
        return f"{stamp.month}/{stamp.day}/{stamp.year} {stamp.strftime('%I:%M %p').lstrip('0')}"

    def us(day: date) -> str:
        return f"{day.month}/{day.day}/{day.year}"

    owners = ["Pat Kim", "Lee Ortiz", "Sam Patel"]
    base = date(2023, 3, 1)
    n = 0

    def deal(account: int | None, stage_path: list[tuple[str, int]], amount: int, close: date,
             product: str, next_step: str = "Follow up") -> str:  # fmt: skip
        nonlocal n
        oid = sf_id("006", n)
        created = base + timedelta(days=11 * n)
        n += 1
        acct = sf_id("001", account) if account is not None else ""
        acct_name = accounts[account][1] if account is not None and account < 4 else ""
        final = stage_path[-1][0]
        opps.append([oid, f"Deal {n}", acct, acct_name, "New Business", final,
                     f"USD {amount:,.2f}", _sf_probability(final), us(close), us(created),
                     owners[n % 3], next_step, product])  # fmt: skip
        previous = ""
        day = created
        # the amount entered at creation was lower; raised at the second stage change
        for k, (stage, after_days) in enumerate(stage_path):
            day = day + timedelta(days=after_days)
            amt = amount if k >= 1 else amount // 2
            close_then = close if k >= 1 else close - timedelta(days=30)  # slipped
            history.append([oid, f"Deal {n}", previous, stage, f"USD {amt:,.2f}",
                            _sf_probability(stage), us(close_then), when(day)])  # fmt: skip
            previous = stage
        return oid

    for i in range(6):  # won after Negotiation/Review
        deal(i % 4, [("Prospecting", 0), ("Qualification", 10), ("Negotiation/Review", 20),
                     ("Closed Won", 30)], 100_000 + 10_000 * i, base + timedelta(days=200 + i),
             "GTX Pro")  # fmt: skip
    for i in range(5):  # lost early
        deal(i % 4, [("Prospecting", 0), ("Qualification", 15), ("Closed Lost", 25)],
             80_000 + 5_000 * i, base + timedelta(days=150 + i), "GTX Basic")  # fmt: skip
    facts.without_account.append(
        deal(
            None,
            [("Prospecting", 0), ("Needs Analysis", 5)],
            50_000,
            date(2024, 5, 1),
            "GTXPro",
            'Call back,\n"urgent"',
        )
    )
    facts.lines["no account"] = len(opps) + 1
    facts.gtxpro_deals.append(str(opps[-1][0]))
    # The opportunity with a two-line Next Step starts on its own line; the next one is one
    # line further down than its row number says.
    facts.lines["after two-line cell"] = len(opps) + 3
    facts.stale_deal = deal(1, [("Prospecting", 0), ("Negotiation/Review", 10)], 200_000,
                            date(2024, 1, 15), "GTX Pro")  # fmt: skip
    deal(None, [("Prospecting", 0)], 60_000, date(2024, 6, 1), "GTX Basic")
    opps[-1][2] = "0015g00000GHOSTAAA"  # an account the accounts report does not have
    facts.lines["unknown account"] = len(opps) + 2  # + 1 for the two-line cell above
    write_csv(folder / "sf_opportunities_2024.csv", opp_header, opps, SF_FOOTER)
    write_csv(
        folder / "sf_opportunity_history_2024.csv",
        [
            "Opportunity ID",
            "Opportunity Name",
            "From Stage",
            "To Stage",
            "Amount",
            "Probability (%)",
            "Close Date",
            "Last Modified",
        ],
        history,
        SF_FOOTER,
    )
    facts.deals = len(opps)
    facts.won = 6
    facts.lost = 5
    return facts


def _sf_probability(stage: str) -> str:
    return {
        "Prospecting": "10",
        "Qualification": "20",
        "Needs Analysis": "25",
        "Negotiation/Review": "90",
        "Closed Won": "100",
        "Closed Lost": "0",
    }[stage]


# ---------------------------------------------------------------- HubSpot


def hubspot(folder: Path) -> Facts:
    """A deals export with some "Date entered" columns, no companies file."""
    folder.mkdir(parents=True, exist_ok=True)
    facts = Facts(folder)
    entered = ["Appointment Scheduled", "Qualified To Buy", "Contract Sent", "Closed Won",
               "Closed Lost"]  # fmt: skip
    header = [
        "Record ID", "Deal Name", "Deal Stage", "Amount", "Close Date", "Create Date",
        "Deal owner", "Deal Type", "Deal probability", "Associated Company IDs (Primary)",
        "Associated Company (Primary)", "Closed Lost Reason",
        *[f'Date entered "{s} (Sales Pipeline)"' for s in entered],
    ]  # fmt: skip
    rows: list[list[object]] = []

    def stamp(day: date) -> str:
        return f"{day.isoformat()} 10:22"

    companies = [("9001", "Globex"), ("9002", "Initech"), ("9003", "Umbrella")]
    base = date(2024, 1, 8)
    for i in range(9):
        created = base + timedelta(days=9 * i)
        won = i % 3 != 2
        stage = "Closed Won" if won else "Closed Lost"
        dates = [stamp(created), stamp(created + timedelta(days=7)),
                 stamp(created + timedelta(days=20)) if won else "",
                 stamp(created + timedelta(days=35)) if won else "",
                 "" if won else stamp(created + timedelta(days=15))]  # fmt: skip
        company = companies[i % 3]
        rows.append([str(5000 + i), f"{company[1]} expansion {i}", stage, f"{40_000 + 1_000 * i}",
                     stamp(created + timedelta(days=35 if won else 15)), stamp(created),
                     "Dana Scully" if i % 2 else "Fox Mulder", "newbusiness",
                     "1.0" if won else "0", company[0], company[1],
                     "" if won else "Went with a competitor", *dates])  # fmt: skip
    created = date(2024, 4, 1)
    rows.append(["5100", "No company yet", "Qualified To Buy", "12000", stamp(date(2024, 6, 30)),
                 stamp(created), "Fox Mulder", "newbusiness", "0.2", "", "", "",
                 stamp(created), stamp(created + timedelta(days=3)), "", "", ""])  # fmt: skip
    facts.without_account.append("5100")
    rows.append(["5101", "Pilot", "Trial Started", "9000", stamp(date(2024, 7, 1)),
                 stamp(created), "Dana Scully", "newbusiness", "0.3", "9001", "Globex", "",
                 stamp(created), "", "", "", ""])  # fmt: skip
    facts.lines["unknown stage"] = len(rows) + 1
    write_csv(folder / "hubspot-crm-exports-all-deals-2024.csv", header, rows)
    facts.deals = len(rows)
    facts.won = 6
    facts.lost = 3
    return facts
