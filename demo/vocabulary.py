"""Names, industries, titles and phrases the generator draws from (realistic, ICP-based)."""

from __future__ import annotations

FIRST_NAMES = [
    "James",
    "Mary",
    "Robert",
    "Patricia",
    "John",
    "Jennifer",
    "Michael",
    "Linda",
    "David",
    "Elizabeth",
    "William",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Lisa",
    "Matthew",
    "Nancy",
    "Anthony",
    "Sandra",
    "Mark",
    "Ashley",
    "Priya",
    "Wei",
    "Mohammed",
    "Sofia",
    "Lucas",
    "Emma",
    "Noah",
    "Olivia",
    "Liam",
    "Ava",
    "Mateo",
    "Yuki",
    "Hiroshi",
    "Chen",
    "Aisha",
    "Omar",
    "Fatima",
    "Ivan",
    "Elena",
    "Lars",
    "Ingrid",
    "Pierre",
    "Camille",
    "Diego",
    "Lucia",
    "Raj",
    "Anika",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Patel",
    "Kim",
    "Nguyen",
    "Chen",
    "Cohen",
    "Muller",
    "Schmidt",
    "Rossi",
    "Dubois",
    "Tanaka",
    "Sato",
    "Kowalski",
    "Novak",
    "Silva",
    "Costa",
    "Singh",
    "Ali",
    "Larsen",
]

COMPANY_PREFIXES = [
    "North",
    "Blue",
    "Bright",
    "Swift",
    "Clear",
    "Prime",
    "Summit",
    "Cedar",
    "Iron",
    "Silver",
    "Quantum",
    "Vector",
    "Lumen",
    "Nova",
    "Apex",
    "Harbor",
    "Polar",
    "Granite",
    "Crimson",
    "Atlas",
    "Orbit",
    "Pixel",
    "Signal",
    "Echo",
    "Delta",
    "Meridian",
    "Pioneer",
    "Beacon",
    "Falcon",
    "Aurora",
    "Cobalt",
    "Zenith",
    "Horizon",
    "Vertex",
    "Stellar",
    "Ember",
    "Tidal",
    "Canyon",
    "Maple",
    "Onyx",
]
COMPANY_CORES = [
    "wind",
    "peak",
    "stream",
    "stone",
    "field",
    "bridge",
    "path",
    "gate",
    "point",
    "forge",
    "wave",
    "leaf",
    "ridge",
    "light",
    "grid",
    "loop",
    "line",
    "mark",
    "scale",
    "shift",
    "sight",
    "spring",
    "track",
    "vale",
    "works",
    "yard",
    "hub",
    "base",
    "core",
]
COMPANY_SUFFIXES = (
    "Analytics",
    "Software",
    "Technologies",
    "Labs",
    "Systems",
    "Data",
    "Commerce",
    "Media",
    "Health",
    "Financial",
    "Networks",
    "AI",
    "Games",
    "Logistics",
    "Retail",
    "Security",
)

# (industry, sub-industries); the first eight are the ICP's in-scope industries.
IN_SCOPE_INDUSTRIES = (
    ("Software", ("SaaS", "Developer Tools", "Observability")),
    ("Business Products & Services", ("HR Tech", "Marketing Services", "Consulting")),
    ("IT Services", ("Managed Services", "Cloud Consulting")),
    ("Advertising & Marketing", ("Ad Tech", "Marketing Analytics")),
    ("Financial Services", ("Fintech", "Payments", "Insurance Tech")),
    ("Retail", ("Online Retail", "Omnichannel")),
    ("AI", ("ML Platforms", "Generative AI")),
    ("E-Commerce", ("Marketplaces", "D2C")),
)
OUT_OF_SCOPE_INDUSTRIES = (
    ("Manufacturing", ("Industrial Equipment",)),
    ("Consumer Goods", ("Packaged Goods",)),
    ("Government", ("Public Sector",)),
    ("Energy & Utilities", ("Utilities",)),
    ("Media", ("Broadcast",)),
)

REGIONS = (
    ("NA", ("US", "US", "US", "CA")),
    ("EMEA", ("GB", "DE", "FR", "NL", "IL", "SE")),
    ("APAC", ("JP", "SG", "AU", "IN")),
    ("LATAM", ("BR", "MX")),
)
CLOUDS = ("AWS", "AWS", "AWS", "AWS", "GCP", "Azure")

CONTACT_TITLES_SENIOR = ("CTO", "VP Engineering", "VP Data", "Chief Data Officer", "CFO")
CONTACT_TITLES_OTHER = (
    "Head of Data",
    "Director of Analytics",
    "Data Engineering Manager",
    "Senior Data Engineer",
    "Analytics Engineer",
    "Procurement Manager",
    "Staff Software Engineer",
)
EMPLOYEE_TITLES = (
    "Account Executive",
    "Senior Account Executive",
    "Solutions Engineer",
    "Customer Success Manager",
    "Sales Director",
)

COMPETITORS = ("Snowflake", "Redshift", "BigQuery", "ClickHouse", "Databricks")

USE_CASES = (
    "Customer-facing analytics",
    "Real-time dashboards",
    "Data apps",
    "Log and event analytics",
    "Ad-tech bidding analytics",
    "Embedded BI",
)
PAINS = (
    "Dashboards take 10+ seconds under concurrency; customers complain about performance",
    "Warehouse cost grew 3x in a year; finance wants predictable cost",
    "Cannot serve sub-second queries to 500 concurrent users",
    "Ingestion of 800 GB/day falls behind during peaks",
)
METRICS = (
    "p95 latency under 300 ms at 200 QPS",
    "Reduce analytics spend by 40%",
    "Serve 1,000 concurrent dashboard users",
    "Cut data freshness from 1 hour to 1 minute",
)
DECISION_CRITERIA = (
    "Price-performance on their own 5 TB benchmark, SOC 2, AWS marketplace billing",
    "Sub-second p95 on top-20 queries, dbt support, SSO",
)
DECISION_PROCESS = (
    "Tech eval by data platform team, then VP Eng and CFO sign-off",
    "POC success criteria agreed, architecture review board, then procurement",
)
PAPER_PROCESS = (
    "Security review, MSA redlines by legal, PO via AWS marketplace",
    "Procurement needs 3 quotes; legal review ~3 weeks",
)
WON_REASONS = ("Performance on POC", "Price-performance vs incumbent", "Strong champion")
LOST_REASONS = ("Chose competitor", "No budget", "No decision", "Timing / priorities changed")
NEXT_STEPS = (
    "Schedule POC kickoff with the data engineering team",
    "Send pricing proposal and security questionnaire",
    "Benchmark review with the champion next Tuesday",
    "Align on success criteria and timeline with VP Engineering",
)
CALL_TOPICS = (
    "Discovery",
    "Technical deep dive",
    "POC kickoff",
    "POC results review",
    "Pricing discussion",
    "Executive alignment",
    "Architecture review",
)
REQUIREMENTS = (
    "sub-second latency for 200 concurrent users",
    "ingesting 600 GB/day of clickstream events",
    "dbt and Airflow integration",
    "cost predictability versus their current warehouse",
    "100 QPS for a customer-facing dashboard",
)
INTERNAL_TITLES = (
    "Internal deal review: {company}",
    "Daily Standup",
    "Team Meeting - Sales West",
    "All Hands",
    "Weekly Sales Cadence",
)
TICKET_SUBJECTS = (
    "Query latency regression on production engine",
    "Ingestion job failing",
    "Engine does not start",
    "Billing question",
    "How to configure SSO",
    "Request for feature: materialized views",
)

# The demo CRM's stages (the default stage model of the rules folder, DOMAIN stages). The
# generator keeps its own copy, in this order, so the demo data stays the same whatever
# stage model a user configures; the MEDDPICC lists are in the order the random draws use.
DEMO_STAGE_ORDER = [
    "Opportunity Created",
    "Discover",
    "Proof of Concept",
    "Propose",
    "Negotiate",
    "Signature",
    "Closed Won",
    "Closed Lost",
]
DEMO_CLOSED_STAGES = ["Closed Won", "Closed Lost"]
DEMO_STAGE_PROBABILITY = {
    "Opportunity Created": 0.0,
    "Discover": 10.0,
    "Proof of Concept": 40.0,
    "Propose": 50.0,
    "Negotiate": 75.0,
    "Signature": 90.0,
    "Closed Won": 100.0,
    "Closed Lost": 0.0,
}
MEDDPICC_FIELDS = [
    "metrics",
    "economic_buyer",
    "identify_pain",
    "champion",
    "decision_criteria",
    "decision_making_process",
    "paper_process",
    "competition",
]
_EARLY = ["economic_buyer", "identify_pain", "champion", "competition"]
_DISCOVER = [*_EARLY, "metrics", "decision_criteria"]
_POC = [*_DISCOVER, "decision_making_process"]
DEMO_MEDDPICC_REQUIRED = {
    "Opportunity Created": _EARLY,
    "Discover": _DISCOVER,
    "Proof of Concept": _POC,
    "Propose": _POC,
    **{stage: MEDDPICC_FIELDS for stage in ("Negotiate", "Signature", *DEMO_CLOSED_STAGES)},
}
