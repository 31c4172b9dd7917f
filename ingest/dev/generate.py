"""Realistic test traffic for the example catalog (examples/catalog.yaml): XDM-style profile
records and experience events as envelope messages, for `ingest publish --generate`.

- Records are about `people` persons, picked at random. A person is a pure function of
  their number, whatever the seed: person 17 has the same name, Email and ECID in every
  run, so successive runs update the same profiles.
- A share of the messages is invalid, each in a way the pipeline dead-letters with a known
  error class (INVALID_CLASSES); a share are byte-identical copies of a recent message, as
  a publisher's retry or a Pub/Sub redelivery would be.
- A record's time (an event's `timestamp`, a profile's `_repo.modifyDate`) is the clock's
  time less a random delay of up to `out_of_order_seconds`, so records arrive out of order.
- Reproducible: the same seed and the same clock give the same messages, byte for byte.
  On the wall clock (the default) only the record times differ from run to run.
"""

import dataclasses
import datetime
import functools
import json
import random
import uuid
from collections import Counter, deque

from ingest.dev.sample_values import (
    CITIES,
    DEVICES,
    FIRST_NAMES,
    GENDERS,
    LAST_NAMES,
    LOYALTY_TIERS,
    PAGES,
    PRODUCTS,
    REFERRERS,
    SITE,
)

PROFILE_DATASET = "crm-profiles"
EVENT_DATASET_WEIGHTS = {"web-events": 9, "web-events-archive": 1}
PROFILE_SCHEMA = "https://ns.example.com/xdm/individual-profile"
EVENT_SCHEMA = "https://ns.example.com/xdm/experience-event"
SCHEMA_OF_DATASET = {
    "crm-profiles": PROFILE_SCHEMA,
    "web-events": EVENT_SCHEMA,
    "web-events-archive": EVENT_SCHEMA,
}
# The pipeline checks identities only there.
DATASETS_FEEDING_PROFILES = ("crm-profiles", "web-events")

# How invalid messages are spread over the error classes the pipeline gives them.
INVALID_CLASS_WEIGHTS = {
    "schema_violation": 4,
    "identity": 2,
    "not_json": 2,
    "unknown_dataset": 1,
    "unknown_schema": 1,
    "not_object": 1,
    "bad_timestamp": 1,
}
INVALID_CLASSES = tuple(INVALID_CLASS_WEIGHTS)

DEFAULT_PEOPLE = 1000
DEFAULT_PROFILE_SHARE = 0.2
DEFAULT_INVALID_SHARE = 0.05
DEFAULT_OUT_OF_ORDER_SECONDS = 60.0
DEFAULT_DUPLICATE_SHARE = 0.01

# A duplicate copies one of this many latest messages: retries and redeliveries come soon after.
RECENT_MESSAGES_KEPT = 1000
SIGNED_IN_SHARE = 0.5  # events that carry the person's Email besides the device's ECID

EVENT_TYPE_WEIGHTS = {
    "web.webpagedetails.pageViews": 55,
    "web.webinteraction.linkClicks": 20,
    "commerce.productViews": 15,
    "commerce.productListAdds": 7,
    "commerce.purchases": 3,
}
REFERRER_SHARE = 0.3  # events that came from another site
# Typos, and datasets not yet in the catalog.
UNKNOWN_DATASETS = ["crm-profile", "web-event", "mobile-events", "loyalty-events"]
BAD_HEADER_TIMESTAMP_FORMAT = "%m/%d/%Y %H:%M:%S"  # a US-style date, not RFC 3339


@dataclasses.dataclass(frozen=True)
class GeneratedMessage:
    payload: bytes
    # The envelope's header.datasetId (for not_json and not_object, the one it was meant for).
    dataset: str
    error_class: str  # the class the pipeline dead-letters it with; "" when it is valid
    duplicate: bool = False  # a byte-identical copy of an earlier message

    @property
    def valid(self):
        return not self.error_class


@dataclasses.dataclass(frozen=True)
class Person:
    number: int
    first_name: str
    last_name: str
    email: str
    ecid: str  # Experience Cloud ID: the person's device
    crm_id: str
    phone: str
    birth_date: str
    gender: str
    home: tuple  # one of CITIES
    device: tuple  # one of DEVICES
    customer_since: datetime.datetime


@functools.lru_cache(maxsize=100_000)
def person(number):
    """Person `number`: the same in every run, whatever the generator's seed."""
    chance = random.Random(f"person-{number}")
    first_name = chance.choice(FIRST_NAMES)
    last_name = chance.choice(LAST_NAMES)
    return Person(
        number=number,
        first_name=first_name,
        last_name=last_name,
        email=f"{first_name}.{last_name}.{number}@example.com".lower(),
        ecid=str(chance.randrange(10**37, 10**38)),
        crm_id=f"CRM-{number:07d}",
        phone=f"+4477009{chance.randrange(10**5):05d}",
        birth_date=(
            datetime.date(1950, 1, 1) + datetime.timedelta(days=chance.randrange(20_000))
        ).isoformat(),
        gender=chance.choice(GENDERS),
        home=chance.choice(CITIES),
        device=chance.choice(DEVICES),
        customer_since=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc)
        + datetime.timedelta(minutes=chance.randrange(3 * 365 * 24 * 60)),
    )


class RecordGenerator:
    """Makes GeneratedMessages; `counts` tells how many of each kind it has made so far:
    `valid`, `invalid` and `duplicate`, and `invalid_classes` the invalid ones by class."""

    def __init__(
        self,
        seed=None,
        people=DEFAULT_PEOPLE,
        profile_share=DEFAULT_PROFILE_SHARE,
        invalid_share=DEFAULT_INVALID_SHARE,
        out_of_order_seconds=DEFAULT_OUT_OF_ORDER_SECONDS,
        duplicate_share=DEFAULT_DUPLICATE_SHARE,
        clock=None,
    ):
        """profile_share is the share of records that are profile records (the rest are
        events); invalid_share and duplicate_share are shares of all messages."""
        if people < 1:
            raise ValueError(f"people must be at least 1, not {people}")
        for name, share in [
            ("profile share", profile_share),
            ("invalid share", invalid_share),
            ("duplicate share", duplicate_share),
        ]:
            if not 0 <= share <= 1:
                raise ValueError(f"the {name} must be between 0 and 1, not {share}")
        if invalid_share + duplicate_share > 1:
            raise ValueError("the invalid and duplicate shares add up to more than 1")
        if out_of_order_seconds < 0:
            raise ValueError(f"out-of-order seconds cannot be negative: {out_of_order_seconds}")
        self.seed = random.randrange(2**32) if seed is None else seed
        self.people = people
        self.profile_share = profile_share
        self.invalid_share = invalid_share
        self.out_of_order_seconds = out_of_order_seconds
        self.duplicate_share = duplicate_share
        self.clock = clock or (lambda: datetime.datetime.now(datetime.timezone.utc))
        self.random = random.Random(self.seed)
        self.counts = Counter()
        self.invalid_classes = Counter()
        self._recent_messages = deque(maxlen=RECENT_MESSAGES_KEPT)
        self._breakers = {
            "schema_violation": self._break_schema,
            "identity": self._break_identity,
            "not_json": self._cut_short,
            "unknown_dataset": self._name_unknown_dataset,
            "unknown_schema": self._name_other_schema,
            "not_object": self._wrap_in_array,
            "bad_timestamp": self._garble_header_timestamp,
        }

    def messages(self, count):
        for _ in range(count):
            yield self.next_message()

    def next_message(self):
        draw = self.random.random()
        if draw < self.duplicate_share and self._recent_messages:
            self.counts["duplicate"] += 1
            original = self._recent_messages[self.random.randrange(len(self._recent_messages))]
            return dataclasses.replace(original, duplicate=True)
        if draw < self.duplicate_share + self.invalid_share:
            message = self._invalid_message()
            self.counts["invalid"] += 1
            self.invalid_classes[message.error_class] += 1
        else:
            dataset = self._choose_dataset()
            message = GeneratedMessage(_compact_json(self._envelope(dataset)), dataset, "")
            self.counts["valid"] += 1
        self._recent_messages.append(message)
        return message

    def _choose_dataset(self):
        if self.random.random() < self.profile_share:
            return PROFILE_DATASET
        return self._weighted_choice(EVENT_DATASET_WEIGHTS)

    def _weighted_choice(self, weights):
        return self.random.choices(list(weights), weights=list(weights.values()))[0]

    def _envelope(self, dataset):
        someone = person(self.random.randrange(self.people))
        if dataset == PROFILE_DATASET:
            entity = self._profile_record(someone)
        else:
            entity = self._event(someone)
        return {
            "header": {"datasetId": dataset, "schemaRef": {"id": SCHEMA_OF_DATASET[dataset]}},
            "body": {"xdmEntity": entity},
        }

    def _record_time(self):
        delay = self.random.uniform(0, self.out_of_order_seconds)
        return _rfc3339(self.clock() - datetime.timedelta(seconds=delay))

    def _new_id(self):
        return str(uuid.UUID(int=self.random.getrandbits(128), version=4))

    def _profile_record(self, someone):
        identities = {
            "Email": [
                {"id": someone.email, "authenticatedState": "authenticated", "primary": True}
            ],
            "ECID": [{"id": someone.ecid, "authenticatedState": "ambiguous"}],
        }
        if self.random.random() < 0.5:
            identities["CRMID"] = [{"id": someone.crm_id, "authenticatedState": "authenticated"}]
        city, country, country_code, postal_code, _ = someone.home
        # Like a CRM's change feed: each record carries a few groups of attributes, not all.
        groups = {
            "person": {
                "name": {
                    "firstName": someone.first_name,
                    "lastName": someone.last_name,
                    "fullName": f"{someone.first_name} {someone.last_name}",
                },
                "birthDate": someone.birth_date,
                "gender": someone.gender,
            },
            "personalEmail": {"address": someone.email, "primary": True},
            "mobilePhone": {"number": someone.phone},
            "homeAddress": {
                "city": city,
                "country": country,
                "countryCode": country_code,
                "postalCode": postal_code,
            },
            "loyalty": {
                "tier": self.random.choice(LOYALTY_TIERS),
                "points": self.random.randrange(10_000),
                "joinDate": _rfc3339(someone.customer_since),
            },
            "consents": {"marketing": {"email": {"val": self.random.choice("yn")}}},
        }
        chosen = [name for name in groups if self.random.random() < 0.5] or ["loyalty"]
        record = {"_id": self._new_id(), "identityMap": identities}
        record.update((name, groups[name]) for name in chosen)
        record["_repo"] = {
            "createDate": _rfc3339(someone.customer_since),
            "modifyDate": self._record_time(),
        }
        return record

    def _event(self, someone):
        event_type = self._weighted_choice(EVENT_TYPE_WEIGHTS)
        ecid = {"id": someone.ecid, "authenticatedState": "ambiguous"}
        if self.random.random() < SIGNED_IN_SHARE:
            identities = {
                "ECID": [ecid],
                "Email": [
                    {"id": someone.email, "authenticatedState": "authenticated", "primary": True}
                ],
            }
        else:
            identities = {"ECID": [dict(ecid, primary=True)]}
        event = {
            "_id": self._new_id(),
            "timestamp": self._record_time(),
            "eventType": event_type,
            "identityMap": identities,
        }
        if event_type.startswith("commerce."):
            event.update(self._commerce(event_type, someone))
        else:
            name, path, section = self.random.choice(PAGES)
            event["web"] = {
                "webPageDetails": {"name": name, "URL": SITE + path, "siteSection": section}
            }
        if self.random.random() < REFERRER_SHARE:
            event["web"]["webReferrer"] = {"URL": self.random.choice(REFERRERS)}
        device_type, browser = someone.device
        event["device"] = {"type": device_type}
        event["environment"] = {"browserDetails": {"name": browser}}
        return event

    def _commerce(self, event_type, someone):
        items = self.random.sample(
            PRODUCTS, 1 if event_type != "commerce.purchases" else self.random.randint(1, 3)
        )
        quantities = [
            1 if event_type == "commerce.productViews" else self.random.randint(1, 3) for _ in items
        ]
        product_list = [
            {
                "SKU": sku,
                "name": name,
                "quantity": quantity,
                "priceTotal": round(price * quantity, 2),
            }
            for (sku, name, price), quantity in zip(items, quantities, strict=True)
        ]
        if event_type == "commerce.purchases":
            page = {
                "name": "Order confirmation",
                "URL": f"{SITE}/checkout/done",
                "siteSection": "checkout",
            }
            commerce = {
                "order": {
                    "purchaseID": f"ORD-{self.random.randrange(10**8):08d}",
                    "priceTotal": round(sum(item["priceTotal"] for item in product_list), 2),
                    "currencyCode": someone.home[4],
                },
                "purchases": {"value": 1},
            }
        else:
            sku, name, _ = items[0]
            page = {"name": name, "URL": f"{SITE}/p/{sku}", "siteSection": "products"}
            measure = "productViews" if event_type == "commerce.productViews" else "productListAdds"
            commerce = {measure: {"value": 1}}
        return {
            "web": {"webPageDetails": page},
            "commerce": commerce,
            "productListItems": product_list,
        }

    # Invalid messages: a valid envelope, then broken in one way. Each breaker returns the payload.

    def _invalid_message(self):
        error_class = self._weighted_choice(INVALID_CLASS_WEIGHTS)
        dataset = self._choose_dataset()
        if error_class == "identity" and dataset not in DATASETS_FEEDING_PROFILES:
            dataset = "web-events"
        if error_class == "bad_timestamp":
            dataset = PROFILE_DATASET  # only a profile record's time can come from the header
        envelope = self._envelope(dataset)
        payload = self._breakers[error_class](envelope)
        return GeneratedMessage(payload, envelope["header"]["datasetId"], error_class)

    def _break_schema(self, envelope):
        record = envelope["body"]["xdmEntity"]
        if envelope["header"]["datasetId"] == PROFILE_DATASET:
            mistakes = [
                lambda: record.update(
                    loyalty={"tier": "gold", "points": str(self.random.randrange(10_000))}
                ),
                lambda: record.update(homeAddress={"city": "Boston", "countryCode": "us"}),
                lambda: record.update(person={"birthDate": "10/12/1985"}),
                lambda: record.update(nickname="Ada"),  # the schema allows no other properties
            ]
        else:
            mistakes = [
                lambda: record.pop("timestamp"),
                # Epoch milliseconds, not a date-time.
                lambda: record.update(timestamp=int(self.clock().timestamp() * 1000)),
                lambda: record.update(eventType="web.formFilledOut"),
                lambda: record.update(
                    commerce={"order": {"priceTotal": 20.0, "currencyCode": "usd"}}
                ),
            ]
        self.random.choice(mistakes)()
        return _compact_json(envelope)

    def _break_identity(self, envelope):
        record = envelope["body"]["xdmEntity"]
        identity_map = record["identityMap"]
        if "Email" not in identity_map:
            identity_map["Email"] = [{"id": f"guest-{self.random.randrange(10**6)}@example.com"}]
        identities = [identity for entries in identity_map.values() for identity in entries]
        mark_all = self.random.random() < 0.5  # several primaries, or none
        for identity in identities:
            if mark_all:
                identity["primary"] = True
            else:
                identity.pop("primary", None)
        return _compact_json(envelope)

    def _cut_short(self, envelope):
        payload = _compact_json(envelope)  # ASCII only, so any cut leaves valid UTF-8
        return payload[: self.random.randrange(1, len(payload))]

    def _name_unknown_dataset(self, envelope):
        envelope["header"]["datasetId"] = self.random.choice(UNKNOWN_DATASETS)
        return _compact_json(envelope)

    def _name_other_schema(self, envelope):
        schema = envelope["header"]["schemaRef"]
        schema["id"] = EVENT_SCHEMA if schema["id"] == PROFILE_SCHEMA else PROFILE_SCHEMA
        return _compact_json(envelope)

    def _wrap_in_array(self, envelope):
        return _compact_json([envelope])  # a batch where one record belongs

    def _garble_header_timestamp(self, envelope):
        record = envelope["body"]["xdmEntity"]
        del record["_repo"]  # so the record's time comes from the header
        sent_at = self.clock().strftime(BAD_HEADER_TIMESTAMP_FORMAT)
        envelope["header"]["timestamp"] = sent_at
        return _compact_json(envelope)


def _rfc3339(moment):
    utc = moment.astimezone(datetime.timezone.utc)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _compact_json(value):
    return json.dumps(value, separators=(",", ":")).encode("ascii")
