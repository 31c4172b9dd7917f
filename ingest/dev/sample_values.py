"""The shop, the people and the places that ingest.dev.generate's traffic is about."""

SITE = "https://shop.example.com"
PAGES = [  # (name, path, site section)
    ("Home", "/", "home"),
    ("Compilers", "/c/compilers", "catalog"),
    ("Cryptography", "/c/crypto", "catalog"),
    ("Calculating machines", "/c/calculating-machines", "catalog"),
    ("Order history", "/account/orders", "account"),
    ("Newsletter", "/newsletter", "marketing"),
    ("Shipping and returns", "/help/shipping", "support"),
]
PRODUCTS = [  # (SKU, name, unit price)
    ("GEAR-042", "Brass gear set", 49.9),
    ("BOOK-1959", "COBOL pocket guide", 24.0),
    ("ENIG-001", "Enigma replica", 349.0),
    ("LOOM-007", "Jacquard loom cards", 18.5),
    ("SLIDE-010", "Slide rule", 39.0),
    ("DIFF-002", "Difference engine kit", 129.0),
    ("TUBE-6SN7", "Vacuum tube 6SN7", 12.75),
    ("PUNCH-080", "Punched cards, box of 500", 21.0),
]
REFERRERS = [
    "https://www.search.example/?q=brass+gear+set",
    "https://news.example.org/history-of-computing",
    "https://social.example.com/posts/8812734",
    "https://mail.example.net/?utm_campaign=autumn",
]
FIRST_NAMES = [
    "Ada",
    "Grace",
    "Alan",
    "Katherine",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Claude",
    "Frances",
    "John",
    "Radia",
    "Tim",
    "Hedy",
    "Dennis",
    "Karen",
]
LAST_NAMES = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Johnson",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Shannon",
    "Allen",
    "Backus",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "Ritchie",
    "Jones",
]
CITIES = [  # (city, country, country code, postal code, currency)
    ("London", "United Kingdom", "GB", "W1J 7NT", "GBP"),
    ("Manchester", "United Kingdom", "GB", "M13 9PL", "GBP"),
    ("Arlington", "United States", "US", "22201", "USD"),
    ("Boston", "United States", "US", "02139", "USD"),
    ("Amsterdam", "Netherlands", "NL", "1012 JS", "EUR"),
    ("Zurich", "Switzerland", "CH", "8001", "CHF"),
    ("Toronto", "Canada", "CA", "M5V 2T6", "CAD"),
]
DEVICES = [
    ("desktop", "Firefox"),
    ("desktop", "Chrome"),
    ("mobile", "Safari"),
    ("mobile", "Chrome"),
    ("tablet", "Safari"),
]
LOYALTY_TIERS = ["bronze", "silver", "gold", "platinum"]
GENDERS = ["female", "male", "not_specified", "non_specific"]
