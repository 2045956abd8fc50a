"""Ticket rules without I/O: the signed code, which tickets an order gets, the gate's verdict, reading
ticket-bookings records, what an upload must be, file sniffing, receipts, the PDF."""

from __future__ import annotations

import io
import itertools
import re
import string
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pypdf
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from boxoffice.platform.keys import generate_key
from boxoffice.tickets import domain
from boxoffice.tickets.codes import InvalidTicketCode
from boxoffice.tickets.functions import created_objects
from boxoffice.tickets.keys import TicketKeyRing
from boxoffice.tickets.pdf import TicketDocument, find_fonts, latin1, render_ticket_pdf

RING = TicketKeyRing([generate_key()])
TICKET = "0195f1c2-aaaa-7bbb-8ccc-123456789abc"
EVENT = "0195f1c2-aaaa-7bbb-8ccc-123456789abd"


def a_code(holder: str = "Ann Fan", version: int = 1) -> str:
    return RING.sign(ticket_id=TICKET, subject_id=EVENT, seat="A-12", holder=holder, version=version)


def test_a_code_verifies_offline_and_is_short_enough_for_a_qr() -> None:
    code = a_code()
    claims = RING.verify(code)
    assert (claims.ticket_id, claims.subject_id, claims.seat, claims.holder, claims.version) == (
        TICKET,
        EVENT,
        "A-12",
        "Ann Fan",
        1,
    )
    assert len(code) < 320 and set(code) <= set(string.ascii_letters + string.digits + "-_.")


def test_changing_any_character_of_a_code_makes_it_invalid() -> None:
    code = a_code()
    alphabet = string.ascii_letters + string.digits + "-_"
    for i, char in enumerate(code):
        if char == ".":
            continue
        for replacement in (alphabet[(alphabet.index(char) + 1) % 64], alphabet[(alphabet.index(char) + 33) % 64]):
            with pytest.raises(InvalidTicketCode):
                RING.verify(code[:i] + replacement + code[i + 1 :])


@settings(max_examples=200)
@given(st.text(max_size=400))
def test_arbitrary_strings_are_invalid_codes_never_crashes(text: str) -> None:
    with pytest.raises(InvalidTicketCode):
        RING.verify(text)


def test_a_code_signed_with_another_key_is_refused() -> None:
    other = TicketKeyRing([generate_key()])
    forged = other.sign(ticket_id=TICKET, subject_id=EVENT, seat="A-12", holder="Ann Fan", version=1)
    with pytest.raises(InvalidTicketCode):
        RING.verify(forged)
    # Same payload, other key's signature, claiming our key id: still refused.
    payload, _ = a_code().split(".")
    with pytest.raises(InvalidTicketCode):
        RING.verify(payload + "." + forged.split(".")[1])


def test_a_rotated_ring_still_verifies_codes_of_older_keys() -> None:
    rotated = TicketKeyRing([generate_key(), *RING.keys])
    assert rotated.verify(a_code()).ticket_id == TICKET


def test_one_ticket_per_seat_or_general_admission_unit() -> None:
    reserved = {
        "ticket_count": 2,
        "items": [
            {"seat_id": "s1", "label": "A-1", "section": "Stalls", "price": 4500},
            {"seat_id": "s2", "label": "A-2", "section": "Stalls", "price": 4500},
        ],
    }
    planned = [(t.line_no, t.seat_id, t.label) for t in domain.plan_tickets(reserved)]
    assert planned == [(1, "s1", "A-1"), (2, "s2", "A-2")]
    general = {"ticket_count": 3, "items": [{"seat_id": None, "label": "Floor", "section": "Floor"}] * 3}
    assert [(t.seat_id, t.label) for t in domain.plan_tickets(general)] == [(None, "Floor")] * 3
    seeds_shape = {"ticket_count": 2}  # the seeds' record: a count, no items
    assert [t.label for t in domain.plan_tickets(seeds_shape)] == [domain.GENERAL_ADMISSION] * 2


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"%PDF-1.7\n", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n\x00", "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"\x7fELF\x02\x01\x01\x00", None),
        (b"MZ\x90\x00", None),
        (b"%PDF", None),
        (b"", None),
    ],
)
def test_files_are_judged_by_magic_bytes(head: bytes, expected: str | None) -> None:
    assert domain.sniff_content_type(head) == expected


def test_the_generator_rejects_too_large_and_disguised_files() -> None:
    assert domain.judge_upload(b"%PDF-" + b"x" * 10, max_bytes=15).status == "verified"
    assert domain.judge_upload(b"%PDF-" + b"x" * 11, max_bytes=15).status == "rejected"
    assert domain.judge_upload(b"\x7fELF....", max_bytes=100).status == "rejected"


def test_receipts_are_named_like_the_seeds_and_never_trigger_the_generator() -> None:
    assert domain.receipt_key("passport.pdf") == "tickets/passport.pdf_TICKET.txt"
    assert domain.receipt_key("uploads/u1/0195f1c2") == "tickets/0195f1c2_TICKET.txt"
    assert domain.is_generated(domain.receipt_key("uploads/u1/x")) and not domain.is_generated("uploads/u1/x")


def test_s3_event_keys_are_url_decoded() -> None:
    event = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "b"}, "object": {"key": "uploads/a+b%2Bc", "size": 3}},
            },
            {"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "b"}, "object": {"key": "gone"}}},
        ]
    }
    assert [(o.bucket, o.key, o.size) for o in created_objects(event)] == [("b", "uploads/a b+c", 3)]


def test_the_pdf_prints_the_ticket_and_carries_the_code() -> None:
    code = a_code("Zoë Łukasz")
    details = {"name": "Big Concert", "venue": "Arena", "city": "Berlin", "starts_at": "2026-12-01T19:30:00Z"}
    pdf = render_ticket_pdf(TicketDocument(TICKET, "order-7", "event", "Zoë Łukasz", code, "A-12", "Stalls", details))
    assert pdf.startswith(b"%PDF-")
    text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    for expected in ("Big Concert", "Arena, Berlin", "Stalls, seat A-12", "Zoë Lukasz", "order-7", "19:30"):
        assert expected in text, expected
    assert code in text.replace("\n", "")


def test_train_tickets_print_stations_local_times_the_passenger_and_what_to_show() -> None:
    details = {
        "train_number": "12952",
        "name": "Mumbai Rajdhani Express",
        "origin": "NDLS",
        "destination": "BCT",
        "origin_name": "New Delhi",
        "destination_name": "Mumbai Central",
        "origin_timezone": "Asia/Kolkata",
        "destination_timezone": "Asia/Kolkata",
        "class_code": "3A",
        "class_name": "AC 3 Tier",
        "departs_at": "2026-12-01T11:25:00Z",
        "arrives_at": "2026-12-02T03:05:00Z",
    }
    doc = TicketDocument(TICKET, "o", "train", "Ravi Kumar", a_code("Ravi"), "B1-7", "3A", details, "K7M29QXD")
    text = pypdf.PdfReader(io.BytesIO(render_ticket_pdf(doc))).pages[0].extract_text()
    for expected in (
        "12952 Mumbai Rajdhani Express",
        "New Delhi (NDLS)",
        "Mumbai Central (BCT)",
        "Tue 01 Dec 2026, 16:55 IST",  # 11:25 UTC is 16:55 in India
        "Wed 02 Dec 2026, 08:35 IST",
        "AC 3 Tier (3A)",
        "B1-7",
        "Passenger",
        "Ravi Kumar",
        "K7M29QXD",
        "Show this ticket with a photo ID matching the passenger name",
    ):
        assert expected in text, expected
    assert "UTC" not in text


def test_event_tickets_print_the_local_time_the_address_and_the_order_number() -> None:
    details = {"name": "Aurora Nights Live", "venue": "Ziggo Dome", "city": "Amsterdam",
               "address": "De Passage 100, 1101 AX Amsterdam", "starts_at": "2026-12-03T19:00:00Z",
               "timezone": "Europe/Amsterdam"}
    doc = TicketDocument(TICKET, "o", "event", "Ann Fan", a_code("Ann"), "Floor", "Floor", details, "AB12CD34")
    text = pypdf.PdfReader(io.BytesIO(render_ticket_pdf(doc))).pages[0].extract_text()
    for expected in ("Thu 03 Dec 2026, 20:00 CET", "De Passage 100, 1101 AX Amsterdam", "AB12CD34", "Holder"):
        assert expected in text, expected
    assert "photo ID" not in text


UNICODE_NAMES = {
    "Devanagari": "प्रिया शर्मा",
    "Cyrillic": "Анна Фёдорова",
    "Chinese": "王小明",
    "Japanese": "山田はなこ",
    "Korean": "김민준",
    "Polish": "Zoë Łukasz",
}


@pytest.mark.parametrize("script", sorted(UNICODE_NAMES))
def test_pdfs_print_holder_names_in_their_own_script_with_an_embedded_font_subset(script: str) -> None:
    fonts = find_fonts()
    # The Debian font packages of scripts/install-system-deps.sh (and deploy/Dockerfile).
    assert [f.name for f in fonts] == ["sans", "deva", "cjk", "hangul"], "run scripts/install-system-deps.sh"
    name = UNICODE_NAMES[script]
    details = {"name": f"Фестиваль {name}", "venue": "Arena", "city": "Mumbai", "starts_at": "2026-12-01T19:30:00Z"}
    pdf = render_ticket_pdf(
        TicketDocument(TICKET, "order-7", "event", name, a_code(name), "A-12", "Stalls", details), fonts
    )
    page = pypdf.PdfReader(io.BytesIO(pdf)).pages[0]
    text = page.extract_text()
    assert f"Holder {name}" in text.replace("\n", " ") or name in text, (script, text)
    assert f"Фестиваль {name}" in text
    assert "?" not in text.split("Holder", 1)[1].split("Order", 1)[0]
    embedded = {str(f["/BaseFont"]) for f in page["/Resources"]["/Font"].values()}
    assert any(f.endswith("boxofficeticketsubset") for f in embedded), embedded
    assert b"/FontFile2" in pdf  # the font travels with the PDF
    assert len(pdf) < 60_000  # subsets of the glyphs used, not whole fonts (the CJK font alone is 4 MB)


def test_latin1_tickets_embed_no_font_and_without_unicode_fonts_names_degrade_to_question_marks() -> None:
    details = {"name": "Concert", "venue": "Arena", "city": "Berlin", "starts_at": "2026-12-01T19:30:00Z"}
    plain = render_ticket_pdf(
        TicketDocument(TICKET, "o", "event", "Ann Fan", a_code("Ann"), "A-1", None, details), find_fonts()
    )
    assert b"/FontFile2" not in plain  # core fonts only: nothing embedded
    bare = render_ticket_pdf(TicketDocument(TICKET, "o", "event", "王小明", a_code("x"), "A-1", None, details), ())
    assert "Holder ???" in pypdf.PdfReader(io.BytesIO(bare)).pages[0].extract_text()
    assert find_fonts([Path("/nonexistent")]) == ()


def test_names_outside_latin1_are_transliterated_for_the_core_font() -> None:
    assert latin1("Zoë Łukasz Øre") == "Zoë Lukasz Øre"
    assert latin1("李") == "?"


# Which tickets an order gets, as properties.
ITEM = st.fixed_dictionaries(
    {"seat_id": st.one_of(st.none(), st.text(max_size=10)), "label": st.text(max_size=150)},
    optional={"section": st.one_of(st.none(), st.text(max_size=150))},
)


@given(st.lists(ITEM, max_size=12), st.integers(0, 12))
def test_an_order_gets_one_ticket_per_item_and_at_least_its_count(items: list[dict[str, Any]], count: int) -> None:
    lines = domain.plan_tickets({"items": items, "ticket_count": count})
    assert len(lines) == max(len(items), count)
    assert [line.line_no for line in lines] == list(range(1, len(lines) + 1))  # the unique key per order line
    assert all(0 < len(line.label) <= 100 for line in lines)
    assert all(line.section is None or len(line.section) <= 100 for line in lines)


# Reading ticket-bookings records.
RECORD = {"order_id": "o1", "user_id": "u1", "event_id": "e1", "status": "confirmed", "holder_name": "Ann"}


def test_a_booking_record_is_read_as_the_contract_shapes_it() -> None:
    booking = domain.parse_booking("booking.order-confirmed", {**RECORD, "kind": "train", "train": {"name": "R"}})
    assert booking is not None
    assert (booking.order_id, booking.user_id, booking.subject_id, booking.status) == ("o1", "u1", "e1", "confirmed")
    assert (booking.kind, booking.details, booking.holder_name) == ("train", {"name": "R"}, "Ann")
    seeds = domain.parse_booking("booking.order-cancelled", {k: v for k, v in RECORD.items() if k != "status"})
    assert seeds is not None and seeds.status == "cancelled" and seeds.kind == "event" and seeds.details == {}
    long_name, no_name = (domain.parse_booking("x", {**RECORD, "holder_name": h}) for h in ("N" * 500, None))
    assert long_name is not None and long_name.holder_name == "N" * 200
    assert no_name is not None and no_name.holder_name == "Ticket holder"


@pytest.mark.parametrize(
    "broken",
    [{"order_id": ""}, {"user_id": None}, {"event_id": 7}, {"status": "refunded"}, {"order_id": ["o1"]}],
)
def test_a_malformed_booking_record_is_refused(broken: dict[str, Any]) -> None:
    assert domain.parse_booking("booking.order-confirmed", {**RECORD, **broken}) is None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10,
)


@given(st.text(max_size=30), st.dictionaries(st.sampled_from([*RECORD, "kind", "event", "train", "items"]), JSON))
def test_any_record_parses_or_is_refused_never_crashes(event_type: str, data: dict[str, Any]) -> None:
    booking = domain.parse_booking(event_type, data)
    if booking is not None:
        assert booking.status in ("confirmed", "cancelled") and booking.kind in ("event", "train")
        assert all(isinstance(v, str) and v for v in (booking.order_id, booking.user_id, booking.subject_id))
        assert isinstance(booking.details, dict) and len(booking.holder_name) <= 200


# The gate's verdict on a genuine code that admitted nobody.
def a_ticket(status: domain.TicketStatus, code: str, used_at: datetime | None = None) -> domain.Ticket:
    return domain.Ticket(
        id=TICKET,
        order_id="o1",
        line_no=1,
        user_id="u1",
        kind="event",
        subject_id=EVENT,
        seat_id=None,
        label="Floor",
        section=None,
        holder_name="Ann",
        version=1,
        code=code,
        status=status,
        created_at=datetime(2026, 11, 1, tzinfo=UTC),
        used_at=used_at,
    )


def test_why_a_genuine_code_is_refused() -> None:
    code = a_code()
    used_at = datetime(2026, 12, 1, 19, 31, tzinfo=UTC)
    assert isinstance(domain.refusal(None, code), InvalidTicketCode)
    reissued = domain.refusal(a_ticket(domain.TicketStatus.VALID, "another code"), code)
    assert isinstance(reissued, InvalidTicketCode) and "current code" in reissued.detail
    assert isinstance(domain.refusal(a_ticket(domain.TicketStatus.VOIDED, code), code), domain.TicketVoided)
    used = domain.refusal(a_ticket(domain.TicketStatus.USED, code, used_at), code)
    assert isinstance(used, domain.AlreadyUsed) and used.extra["used_at"] == used_at.isoformat()
    assert used.status == 409 and used.slug == "already-used"


# What an upload must be.
@given(st.binary(max_size=64), st.integers(0, 64))
def test_an_upload_is_accepted_only_within_the_limit_and_by_its_content(data: bytes, max_bytes: int) -> None:
    try:
        content_type = domain.check_upload(data, max_bytes=max_bytes)
    except domain.UploadTooLarge:
        assert len(data) > max_bytes
    except domain.UnsupportedUpload:
        assert len(data) <= max_bytes and domain.sniff_content_type(data[: domain.SNIFF_BYTES]) is None
    else:
        assert len(data) <= max_bytes and content_type == domain.sniff_content_type(data)
        assert domain.judge_upload(data, max_bytes=max_bytes).status == "verified"  # the generator agrees


@given(st.text(max_size=400))
def test_a_filename_is_kept_printable_and_short(name: str) -> None:
    cleaned = domain.clean_filename(name)
    assert 0 < len(cleaned) <= 255 and not any(ord(c) < 32 or ord(c) == 127 for c in cleaned)


def test_filenames() -> None:
    assert domain.clean_filename("scan\x00\n.pdf") == "scan.pdf"
    assert domain.clean_filename("") == "upload" and domain.clean_filename("\x01\x02") == "upload"


@given(st.text(min_size=1, max_size=200))
def test_no_receipt_ever_triggers_the_generator_again(key: str) -> None:
    assert domain.is_generated(domain.receipt_key(key))


def text_positions(pdf: bytes) -> list[tuple[float, float]]:
    """(x, y) of every text run on the page, top to bottom (PDF points)."""
    content = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].get_contents()
    assert content is not None
    found = re.findall(rb"BT ([\d.]+) ([\d.]+) Td", content.get_data())
    return [(float(x), float(y)) for x, y in found]


@pytest.mark.parametrize("holder", ["Jane Müller", "王小明"])
def test_each_label_and_its_value_share_a_line_whichever_way_the_value_is_printed(holder: str) -> None:
    """Labels go through ``FPDF.text``; a value too (Latin-1), or a cell (Unicode, for its fallback fonts), or
    a multi-cell (too long for one line): every way prints on the label's baseline, rows 7 mm apart."""
    details = {"name": "A festival whose name is far too long for one line of a ticket, so it wraps onto the next",
               "venue": "Arena", "city": "Zürich", "starts_at": "2026-12-01T19:30:00Z"}
    pdf = render_ticket_pdf(
        TicketDocument(TICKET, "o-1", "event", holder, a_code(holder), "A-1", None, details), find_fonts()
    )
    positions = text_positions(pdf)
    values = [y for x, y in positions if abs(x - 138.90) < 0.01]
    at_left = [y for x, y in positions if abs(x - 31.18) < 0.01]
    labels = [y for y in at_left[2:] if y >= values[-1]]  # not "boxoffice", "Event ticket", the code's lines
    assert len(labels) >= 6
    assert values[:1] + values[2:] == labels  # the event's name wraps: its second line has no label
    assert all(abs((a - b) - 7 * 72 / 25.4) < 0.02 for a, b in itertools.pairwise(values))  # 7 mm apart
