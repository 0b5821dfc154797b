"""services.kernel.wire: requests that cannot be used become a 400 naming the field."""

from __future__ import annotations

import pytest
from crm.contacts.v1 import contacts_service_pb2 as cpb
from crm.tenants.v1 import tenants_service_pb2 as tpb

from services.kernel import wire
from services.kernel.errors import InvalidArgument

FEATURES = "/crm.tenants.v1.TenantsService/UpdateTenantFeatures"
CREATE_CONTACT = "/crm.contacts.v1.ContactsService/CreateContact"
# What Envoy's transcoder sends for {"features": {"x": {}}} on /v1/tenants/abc/features: the map
# entry's bool value is a tag without its value.
TRANSCODED_OBJECT_FOR_BOOL = b"\x12\x04\n\x01x\x10\n\x03abc"


def test_bytes_that_do_not_parse_name_the_broken_field() -> None:
    parse = wire.tolerant(tpb.UpdateTenantFeaturesRequest.FromString)
    assert parse is not None
    request = parse(TRANSCODED_OBJECT_FOR_BOOL)
    assert isinstance(request, wire.Undecodable) and request.field == "features"
    with pytest.raises(InvalidArgument) as caught:
        wire.check(request, FEATURES)
    assert caught.value.reason == "MALFORMED_REQUEST"
    assert [(v.field, v.code) for v in caught.value.violations] == [("features", "INVALID_TYPE")]


def test_sound_bytes_parse_as_before() -> None:
    parse = wire.tolerant(tpb.UpdateTenantFeaturesRequest.FromString)
    assert parse is not None
    good = tpb.UpdateTenantFeaturesRequest(id="t", features={"beta": True})
    assert parse(good.SerializeToString()) == good
    wire.check(good, FEATURES)  # no error
    assert wire.tolerant(None) is None


def test_a_broken_field_inside_a_message_is_named_by_its_path() -> None:
    contact = cpb.CreateContactRequest()
    contact.contact.first_name = "Ada"
    inner = contact.SerializeToString()[2:]  # the Contact message's own bytes
    # The same contact with a tag (`tags` is field 12, a string) cut short.
    broken_inner = inner + b"\x62\x05ab"
    data = b"\x0a" + bytes([len(broken_inner)]) + broken_inner
    parse = wire.tolerant(cpb.CreateContactRequest.FromString)
    assert parse is not None
    request = parse(data)
    assert isinstance(request, wire.Undecodable)
    assert request.field == "contact.tags"
    with pytest.raises(InvalidArgument) as caught:
        wire.check(request, CREATE_CONTACT)
    assert caught.value.violations[0].field == "tags"  # REST: relative to the body, which is the contact


def test_nul_characters_are_refused_wherever_they_hide() -> None:
    request = cpb.CreateContactRequest()
    request.contact.first_name = "A\x00da"
    with pytest.raises(InvalidArgument) as caught:
        wire.check(request, CREATE_CONTACT)
    assert caught.value.reason == "INVALID_CHARACTER"
    assert [(v.field, v.code) for v in caught.value.violations] == [("firstName", "INVALID_CHARACTER")]

    request = cpb.CreateContactRequest()
    request.contact.tags.extend(["vip", "b\x00d"])
    assert wire.nul_field(request) == "contact.tags[1]"
    request = cpb.CreateContactRequest()
    request.contact.custom_fields.update({"nick": "x\x00", "n": 1})
    assert wire.nul_field(request) == "contact.customFields.nick"
    request = cpb.CreateContactRequest()
    request.contact.custom_fields.update({"nested": {"list": ["ok", "\x00"]}})
    assert wire.nul_field(request) == "contact.customFields.nested.list[1]"
    assert wire.nul_field(tpb.UpdateTenantFeaturesRequest(id="t", features={"be\x00ta": True})) == "features"
    assert wire.nul_field(cpb.ListContactsRequest(search="\x00")) == "search"
    clean = cpb.CreateContactRequest()
    clean.contact.first_name = "Ada"
    assert wire.nul_field(clean) is None
