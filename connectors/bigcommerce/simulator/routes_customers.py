"""Customers: v3 ``/customers`` (list with filters, batch create, batch update), v2
``/customers/{id}`` (get, update — the only way to move a customer between groups in v2) and v2
customer groups (list, create, get, count).

Customer groups are answered without ``discount_rules``: the spec's ``oneOf`` for that field lists
four array shapes that every array matches, so no value would validate.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import QueryParams

from .deps import V2, V3, StoreDep, ok, read_array, read_object
from .formats import (
    ApiError,
    dates_ok,
    invalid,
    iso,
    money,
    page_args,
    paginate_v3,
    q_bool,
    q_int_list,
    q_list,
    rfc2822,
)
from .records import CUSTOMER_READ_ONLY, Customer, CustomerGroup, build, merged
from .state import Store

router = APIRouter()


def customer_v3(customer: Customer) -> dict[str, Any]:
    data = customer.model_dump(exclude={"channel_ids"})
    data.update(
        {
            "date_created": iso(customer.date_created),
            "date_modified": iso(customer.date_modified),
            "address_count": 0,
            "attribute_count": 0,
            "authentication": {"force_password_reset": False},
            "store_credit_amounts": [{"amount": 0}],
        }
    )
    if customer.channel_ids is not None:
        data["channel_ids"] = customer.channel_ids
    return data


def customer_v2(store: Store, customer: Customer, base_url: str) -> dict[str, Any]:
    link = f"{base_url}/stores/{store.store_hash}/v2/customers/{customer.id}/addresses"
    return {
        "id": customer.id,
        "company": customer.company,
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "email": customer.email,
        "phone": customer.phone,
        "date_created": rfc2822(customer.date_created),
        "date_modified": rfc2822(customer.date_modified),
        "store_credit": money(0),
        "registration_ip_address": customer.registration_ip_address,
        "customer_group_id": customer.customer_group_id,
        "notes": customer.notes,
        "tax_exempt_category": customer.tax_exempt_category,
        "accepts_marketing": False,
        "addresses": {"url": link, "resource": f"/customers/{customer.id}/addresses"},
        "form_fields": [],
        "reset_pass_on_login": False,
    }


def group_body(group: CustomerGroup) -> dict[str, Any]:
    data = group.model_dump()
    data["date_created"] = rfc2822(group.date_created)
    data["date_modified"] = rfc2822(group.date_modified)
    return data


def _check_group(store: Store, group_id: int, where: str) -> None:
    if group_id and group_id not in store.customer_groups:
        raise invalid({where: f"customer group {group_id} does not exist"})


def _email_taken(store: Store, email: str, except_id: int | None = None) -> bool:
    return any(
        c.email.lower() == email.lower() and c.id != except_id for c in store.customers.values()
    )


def _customer_matches(c: Customer, params: QueryParams) -> bool:
    checks: list[tuple[list[str] | list[int] | None, Any]] = [
        (q_int_list(params, "id:in"), c.id),
        (q_list(params, "email:in"), c.email),
        (q_list(params, "company:in"), c.company),
        (q_list(params, "customer_group_id:in"), str(c.customer_group_id)),
        (q_list(params, "name:in"), f"{c.first_name} {c.last_name}"),
    ]
    if any(wanted is not None and value not in wanted for wanted, value in checks):
        return False
    likes = q_list(params, "name:like")
    if likes and not any(x.lower() in f"{c.first_name} {c.last_name}".lower() for x in likes):
        return False
    return dates_ok(c.date_created, params, "date_created") and dates_ok(
        c.date_modified, params, "date_modified"
    )


@router.get(V3 + "/customers")
async def list_customers(request: Request, store: StoreDep) -> JSONResponse:
    params = request.query_params
    page, limit = page_args(params)
    found = [
        c
        for c in sorted(store.customers.values(), key=lambda c: c.id)
        if _customer_matches(c, params)
    ]
    sort = params.get("sort")
    if sort:
        field, _, direction = sort.partition(":")
        if field not in ("date_created", "last_name", "date_modified"):
            raise invalid({"sort": "is not supported"})
        found.sort(key=lambda c: getattr(c, field), reverse=direction == "desc")
    chunk, meta = paginate_v3(found, page, limit)
    return ok([customer_v3(c) for c in chunk], meta)


def create_customer(store: Store, body: dict[str, Any]) -> Customer:
    now = store.now()
    fields = {k: v for k, v in body.items() if k not in CUSTOMER_READ_ONLY}
    customer = build(Customer, {**fields, "id": 0, "date_created": now, "date_modified": now})
    customer.id = store.next_id("customer")
    store.customers[customer.id] = customer
    store.emit("store/customer/created", {"type": "customer", "id": customer.id})
    return customer


def update_customer(store: Store, customer: Customer, body: dict[str, Any]) -> Customer:
    candidate = merged(customer, body, read_only=CUSTOMER_READ_ONLY)
    before, after = customer.model_dump(), candidate.model_dump()
    changed = {k for k in after if after[k] != before[k]}
    for key in changed:
        setattr(customer, key, getattr(candidate, key))
    if changed:
        customer.date_modified = store.now()
        store.emit("store/customer/updated", {"type": "customer", "id": customer.id})
    return customer


@router.post(V3 + "/customers")
async def create(request: Request, store: StoreDep) -> JSONResponse:
    items = await read_array(request, max_items=10)
    emails: set[str] = set()
    for index, item in enumerate(items):
        missing = {
            f"[{index}].{k}": "is required"
            for k in ("email", "first_name", "last_name")
            if not item.get(k)
        }
        if missing:
            raise invalid(missing, "Error creating customers")
        email = str(item["email"]).lower()
        if _email_taken(store, email) or email in emails:
            raise invalid(
                {f"[{index}].email": "The email address is already in use"},
                "Error creating customers",
            )
        emails.add(email)
        _check_group(store, int(item.get("customer_group_id") or 0), f"[{index}].customer_group_id")
        merged(
            Customer(
                id=0,
                email="a@b.c",
                first_name="x",
                last_name="y",
                date_created=store.now(),
                date_modified=store.now(),
            ),
            item,
        )
    created = [create_customer(store, item) for item in items]
    return ok([customer_v3(c) for c in created])


@router.put(V3 + "/customers")
async def update_many(request: Request, store: StoreDep) -> JSONResponse:
    items = await read_array(request, max_items=10)
    targets = []
    for index, item in enumerate(items):
        customer = store.customers.get(item["id"]) if isinstance(item.get("id"), int) else None
        if customer is None:
            raise invalid({f"[{index}].id": "must be the id of an existing customer"})
        if item.get("email") and _email_taken(store, str(item["email"]), customer.id):
            raise invalid({f"[{index}].email": "The email address is already in use"})
        _check_group(store, int(item.get("customer_group_id") or 0), f"[{index}].customer_group_id")
        merged(customer, item, read_only=CUSTOMER_READ_ONLY)
        targets.append((customer, item))
    done = [update_customer(store, customer, item) for customer, item in targets]
    return ok([customer_v3(c) for c in done])


def _v2_customer(store: Store, customer_id: int) -> Customer:
    customer = store.customers.get(customer_id)
    if customer is None:
        raise ApiError(404, "The requested resource was not found.")
    return customer


def _root(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get(V2 + "/customers/{customer_id}")
async def get_v2(request: Request, store: StoreDep, customer_id: int) -> JSONResponse:
    return JSONResponse(customer_v2(store, _v2_customer(store, customer_id), _root(request)))


@router.put(V2 + "/customers/{customer_id}")
async def update_v2(request: Request, store: StoreDep, customer_id: int) -> JSONResponse:
    customer = _v2_customer(store, customer_id)
    body = await read_object(request)
    if "customer_group_id" in body:
        group_id = body["customer_group_id"]
        if not isinstance(group_id, int) or (group_id and group_id not in store.customer_groups):
            raise ApiError(400, "The field 'customer_group_id' is invalid.")
    allowed = (
        "first_name",
        "last_name",
        "email",
        "company",
        "phone",
        "notes",
        "customer_group_id",
        "tax_exempt_category",
        "registration_ip_address",
    )
    try:
        update_customer(store, customer, {k: v for k, v in body.items() if k in allowed})
    except ApiError as exc:
        raise ApiError(400, f"The request is invalid: {exc.errors}") from exc
    return JSONResponse(customer_v2(store, customer, _root(request)))


@router.get(V2 + "/customer_groups")
async def list_groups(request: Request, store: StoreDep) -> Response:
    params = request.query_params
    page = int(params.get("page") or 1)
    limit = min(int(params.get("limit") or 50), 250)
    found = sorted(store.customer_groups.values(), key=lambda g: g.id)
    if (name := params.get("name")) is not None:
        found = [g for g in found if g.name == name]
    if (like := params.get("name:like")) is not None:
        found = [g for g in found if like.lower() in g.name.lower()]
    if (default := q_bool(params, "is_default")) is not None:
        found = [g for g in found if g.is_default == default]
    return JSONResponse([group_body(g) for g in found[(page - 1) * limit : page * limit]])


@router.post(V2 + "/customer_groups")
async def create_group(request: Request, store: StoreDep) -> JSONResponse:
    body = await read_object(request)
    if not isinstance(body.get("name"), str) or not body["name"]:
        raise ApiError(400, "The field 'name' is invalid.")
    if any(g.name == body["name"] for g in store.customer_groups.values()):
        raise ApiError(409, "The customer group name is already in use.")
    now = store.now()
    fields: dict[str, Any] = {
        k: body[k]
        for k in ("name", "is_default", "is_group_for_guests", "category_access")
        if k in body
    }
    try:
        group = build(CustomerGroup, {**fields, "id": 0, "date_created": now, "date_modified": now})
    except ApiError as exc:
        raise ApiError(400, f"The request is invalid: {exc.errors}") from exc
    group.id = store.next_id("customer_group")
    store.customer_groups[group.id] = group
    return JSONResponse(group_body(group))


@router.get(V2 + "/customer_groups/count")
async def count_groups(store: StoreDep) -> JSONResponse:
    return JSONResponse({"count": len(store.customer_groups)})


@router.get(V2 + "/customer_groups/{group_id}")
async def get_group(store: StoreDep, group_id: int) -> JSONResponse:
    group = store.customer_groups.get(group_id)
    if group is None:
        raise ApiError(404, "The requested resource was not found.")
    return JSONResponse(group_body(group))
