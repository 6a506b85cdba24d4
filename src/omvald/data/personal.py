"""Personal data found by content: customer attributes that identify or contact a person, whatever their name.

``data.personal_columns`` skips columns by name on read. An export names
its columns in its own words (``E-Mail``, ``telefon``, ``personnummer``),
so every other customer attribute is also judged by what it holds. It is
personal, and dropped before validation with a warning that names the
column and the reason but never a value, when:

- its name, lower-cased without punctuation, is a common name for personal
  data in English or a Nordic language (:data:`PERSONAL_NAMES`): first names
  cannot be recognised by content;
- any value holds an e-mail address;
- at least :data:`PATTERN_SHARE` of its values are phone numbers or Nordic
  national identity numbers (Swedish personnummer and samordningsnummer
  with their Luhn digit, Norwegian fødselsnummer with both check digits,
  Danish CPR ``DDMMYY-NNNN``, Finnish HETU with its check character);
- it is an identifier: at least :data:`MIN_VALUES` customers have a value
  and :data:`DISTINCT_SHARE` of those values are distinct. A category is
  shared by many customers; a value that (almost) only one customer has
  names that customer. Numbers with decimals (amounts, scores) are
  measurements and exempt; whole numbers are judged like text.

Pure functions: raw columns in, reasons out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from omvald.data.contract import FALSE_WORDS, TRUE_WORDS

PATTERN_SHARE = 0.05  # share of values that must look like phone or id numbers (random 10-digit codes: < 1%)
DISTINCT_SHARE = 0.9
MIN_VALUES = 50  # fewer values: a small table's categories can be all distinct; the distinct rule waits
SAMPLE_ROWS = 20_000  # rows judged by the phone and id patterns (evenly spaced, so the same every run)
PERSONAL_NAMES = frozenset(
    {
        *("name", "fullname", "firstname", "lastname", "surname", "givenname", "familyname"),
        *("namn", "fornamn", "förnamn", "efternamn", "fulltnamn", "navn", "fornavn", "efternavn", "etternavn"),
        *("nimi", "etunimi", "sukunimi"),
        *("email", "emailaddress", "epost", "epostadress", "mejl", "sähköposti", "sahkoposti"),
        *("phone", "phonenumber", "mobilephone", "mobilenumber", "telephone", "telefon", "telefonnummer"),
        *("mobilnummer", "mobiltelefon", "tlf", "puhelin", "puhelinnumero", "matkapuhelin"),
        *("ssn", "socialsecuritynumber", "nationalid", "personalnumber", "personnummer", "personnr"),
        *("samordningsnummer", "fødselsnummer", "fodselsnummer", "cpr", "cprnr", "cprnummer"),
        *("hetu", "henkilötunnus", "henkilotunnus"),
        *("address", "streetaddress", "street", "adress", "gatuadress", "postadress", "adresse", "osoite"),
        *("birthdate", "dateofbirth", "födelsedatum", "fodelsedatum", "fødselsdato", "syntymäaika"),
        *("iban", "bankaccount", "kontonummer", "ipaddress"),
    }
)

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]{2,}")
_PHONE_CHARS = re.compile(r"^\+?[\d\s\-().\/]+$")
_PHONE_COMPACT = re.compile(r"(?:\+|00)[1-9]\d{6,13}|0[1-9]\d{6,11}")
_PHONE_SEPARATORS = re.compile(r"[\s\-().\/]")
_PHONE_GROUPED = re.compile(r"\d{2,4}(?: \d{2,4}){2,4}")  # "20 12 34 56", "412 34 567": Danish and Norwegian
_SE_ID = re.compile(r"(?:19|20)?(\d{6})[-+]?(\d{4})")
_NO_ID = re.compile(r"\d{11}")
_DK_ID = re.compile(r"(\d{6})-(\d{4})")
_FI_ID = re.compile(r"(\d{6})[-+A-FU-Y](\d{3})([0-9A-Y])")
_FI_CHECK = "0123456789ABCDEFHJKLMNPRSTUVWXY"
_NUMBER = re.compile(r"[+-]?\d+(?:[.,]\d+)?")


@dataclass
class ColumnFacts:
    """What :func:`personal_reason` judges a column by; the facts of two parts of a column add up (:meth:`add`).

    ``sampled``/``phones``/``ids``: the evenly spaced values judged by the
    phone and id patterns, and how many of them matched; ``hashes``: the
    distinct values, as 64-bit hashes (8 bytes per distinct value).
    """

    is_bool: bool = False
    n_text: int = 0
    all_yes_no: bool = True
    email: bool = False
    sampled: int = 0
    phones: int = 0
    ids: int = 0
    all_numbers: bool = True
    any_decimals: bool = False
    hashes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))

    def add(self, other: ColumnFacts) -> ColumnFacts:
        """The facts of the rows of ``self`` followed by those of ``other``."""
        return ColumnFacts(
            self.is_bool or other.is_bool,
            self.n_text + other.n_text,
            self.all_yes_no and other.all_yes_no,
            self.email or other.email,
            self.sampled + other.sampled,
            self.phones + other.phones,
            self.ids + other.ids,
            self.all_numbers and other.all_numbers,
            self.any_decimals or other.any_decimals,
            np.union1d(self.hashes, other.hashes),
        )


def column_facts(values: pd.Series, whole: bool | None = None, sample: np.ndarray | None = None) -> ColumnFacts:
    """The :class:`ColumnFacts` of raw ``values`` (one per customer).

    For a part of a column (a batch of a file read in parts) pass
    ``whole`` (whether every value of the *whole* float column is a
    whole number, which decides how it reads as text) and ``sample`` (which
    of the part's non-empty values the whole column's evenly spaced sample
    takes, :func:`sample_positions`).
    """
    if pd.api.types.is_bool_dtype(values):
        return ColumnFacts(is_bool=True)
    text = _as_text(values, whole)
    if sample is None:
        sample = np.arange(0, len(text), max(1, len(text) // SAMPLE_ROWS))
    sampled = text.iloc[sample]
    distinct = pd.Series(pd.unique(text.to_numpy()), dtype="str")
    return ColumnFacts(
        n_text=len(text),
        all_yes_no=bool(distinct.str.lower().isin(TRUE_WORDS | FALSE_WORDS).all()),
        email=bool(distinct.str.contains(EMAIL).any()),
        sampled=len(sampled),
        phones=int(looks_like_phone(sampled).sum()),
        ids=int(looks_like_national_id(sampled).sum()),
        all_numbers=bool(text.str.fullmatch(_NUMBER).all()),
        any_decimals=bool(text.str.contains(r"[.,]\d", regex=True).any()),
        hashes=np.unique(pd.util.hash_array(distinct.to_numpy(dtype=object))),
    )


def sample_positions(offset: int, n: int, total: int) -> np.ndarray:
    """Which of ``n`` non-empty values, after ``offset`` earlier ones, the evenly spaced sample of ``total`` takes."""
    step = max(1, total // SAMPLE_ROWS)
    first = (-offset) % step
    return np.arange(first, n, step)


def personal_reason(name: str, values: pd.Series) -> str | None:
    """Why the attribute column ``name`` with raw ``values`` (one per customer) is personal data, or ``None``.

    The reason names the kind of data and a share, never a value.
    """
    return reason_from_facts(name, column_facts(values))


def reason_from_facts(name: str, facts: ColumnFacts) -> str | None:
    """:func:`personal_reason` from the facts of the whole column."""
    if facts.is_bool:
        return None
    if facts.all_yes_no and facts.n_text:
        return None  # a yes/no flag holds nobody's data, whatever its name ("mobile")
    by_name = "its name is a usual name for personal data" if normalized_name(name) in PERSONAL_NAMES else None
    if not facts.n_text:
        return by_name
    if facts.email:
        return "it holds e-mail addresses"
    phones = facts.phones / facts.sampled
    if phones >= PATTERN_SHARE:
        return f"{phones:.0%} of its values look like phone numbers"
    ids = facts.ids / facts.sampled
    if ids >= PATTERN_SHARE:
        return f"{ids:.0%} of its values look like national identity numbers"
    decimals = facts.all_numbers and facts.any_decimals
    distinct = len(facts.hashes)
    if facts.n_text >= MIN_VALUES and not decimals and distinct >= DISTINCT_SHARE * facts.n_text:
        return f"it identifies customers: {distinct:,} distinct values among {facts.n_text:,} customers"
    return by_name


def personal_columns(customers: pd.DataFrame, contract_columns: set[str]) -> dict[str, str]:
    """``{column: reason}`` for the attribute columns of a raw customers table that hold personal data."""
    found = {}
    for column in customers.columns:
        if column in contract_columns:
            continue
        reason = personal_reason(str(column), customers[column])
        if reason is not None:
            found[str(column)] = reason
    return found


def normalized_name(name: str) -> str:
    """``"E-Mail"`` -> ``"email"``: lower case, letters and digits only."""
    return re.sub(r"[\W_]+", "", str(name).lower())


def looks_personal_value(value: object) -> bool:
    """True for one value that is an e-mail address, a phone number or a Nordic national identity number."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    return bool(EMAIL.search(text)) or _phone(text) or _national_id(text.upper())


def looks_like_phone(text: pd.Series) -> pd.Series:
    """Per value: written like a phone number (international prefix, a trunk 0, or digits in spaced groups)."""
    text = text.astype("str").str.strip()
    return pd.Series([_phone(v) for v in text.to_numpy()], index=text.index, dtype=bool)


def looks_like_national_id(text: pd.Series) -> pd.Series:
    """Per value: a Swedish, Norwegian, Danish or Finnish national identity number (with its check digits)."""
    text = text.astype("str").str.strip().str.upper()
    return pd.Series([_national_id(v) for v in text.to_numpy()], index=text.index, dtype=bool)


def _phone(text: str) -> bool:
    if not _PHONE_CHARS.match(text):
        return False
    return bool(_PHONE_COMPACT.fullmatch(_PHONE_SEPARATORS.sub("", text)) or _PHONE_GROUPED.fullmatch(text))


def _national_id(text: str) -> bool:
    return _swedish(text) or _norwegian(text) or _danish(text) or _finnish(text)


def whole_numbers(values: pd.Series) -> bool:
    """A float column whose every value is a whole number reads as ``"123"``, not ``"123.0"``."""
    values = values.dropna()
    return values.dtype.kind == "f" and bool(len(values)) and bool(np.all(np.mod(values.to_numpy(), 1) == 0))


def _as_text(values: pd.Series, whole: bool | None = None) -> pd.Series:
    if whole is None:
        whole = whole_numbers(values)
    values = values.dropna()
    if whole and values.dtype.kind == "f" and len(values):
        values = values.astype("int64")  # a Parquet float column of whole numbers reads as "123", not "123.0"
    text = values.astype("str").str.strip()
    return text[text != ""]


def _valid_day_month(day: int, month: int) -> bool:
    return 1 <= day <= 31 and 1 <= month <= 12


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(digits):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _swedish(value: str) -> bool:
    m = _SE_ID.fullmatch(value)
    if not m:
        return False
    date, serial = m.group(1), m.group(2)
    day = int(date[4:6])
    day = day - 60 if day > 60 else day  # samordningsnummer: day + 60
    return _valid_day_month(day, int(date[2:4])) and _luhn(date + serial)


def _norwegian(value: str) -> bool:
    if not _NO_ID.fullmatch(value):
        return False
    d = [int(c) for c in value]
    day = d[0] * 10 + d[1]
    day = day - 40 if day > 40 else day  # D-number: day + 40
    if not _valid_day_month(day, d[2] * 10 + d[3]):
        return False
    k1 = 11 - sum(w * x for w, x in zip((3, 7, 6, 1, 8, 9, 4, 5, 2), d, strict=False)) % 11
    k2 = 11 - sum(w * x for w, x in zip((5, 4, 3, 2, 7, 6, 5, 4, 3, 2), d, strict=False)) % 11
    k1, k2 = (0 if k == 11 else k for k in (k1, k2))
    return k1 == d[9] and k2 == d[10]


def _danish(value: str) -> bool:
    m = _DK_ID.fullmatch(value)  # the dash form only: without it, any 10-digit code with a date in front matches
    return bool(m) and _valid_day_month(int(m.group(1)[:2]), int(m.group(1)[2:4]))


def _finnish(value: str) -> bool:
    m = _FI_ID.fullmatch(value)
    if not m:
        return False
    date, serial, check = m.groups()
    return _valid_day_month(int(date[:2]), int(date[2:4])) and _FI_CHECK[int(date + serial) % 31] == check
