"""Store information v2: ``GET /v2/store`` and ``GET /v2/time``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from .deps import V2, StoreDep

router = APIRouter()


@router.get(V2 + "/store")
async def store_info(store: StoreDep) -> JSONResponse:
    domain = f"{store.store_hash}.sandbox.example"
    return JSONResponse(
        {
            "id": store.store_hash,
            "account_uuid": f"00000000-0000-4000-8000-{store.store_id:012d}",
            "domain": domain,
            "secure_url": f"https://{domain}",
            "control_panel_base_url": f"https://store-{store.store_hash}.mybigcommerce.com",
            "status": "live",
            "name": store.name,
            "first_name": "Sandbox",
            "last_name": "Owner",
            "address": "455 Main Street, Austin, Texas 78751",
            "country": "United States",
            "country_code": "US",
            "infrastructure_region": "us-central1",
            "phone": "",
            "admin_email": "owner@example.com",
            "order_email": "orders@example.com",
            "favicon_url": "",
            "timezone": {
                "name": "Etc/UTC",
                "raw_offset": 0,
                "dst_offset": 0,
                "dst_correction": False,
                "date_format": {
                    "display": "jS M Y",
                    "export": "M jS Y",
                    "extended_display": "M jS Y @ g:i A",
                },
            },
            "language": "en",
            "currency": "USD",
            "currency_symbol": "$",
            "decimal_separator": ".",
            "thousands_separator": ",",
            "decimal_places": 2,
            "currency_symbol_location": "left",
            "weight_units": "LBS",
            "dimension_units": "Inches",
            "dimension_decimal_places": 2,
            "dimension_decimal_token": ".",
            "dimension_thousands_token": ",",
            "plan_name": "Standard",
            "plan_level": "Standard",
            "plan_is_trial": False,
            "industry": "Apparel",
            "logo": [],
            "is_price_entered_with_tax": False,
            "store_id": store.store_id,
            "default_channel_id": 1,
            "default_site_id": 1,
            "active_comparison_modules": [],
            "features": {
                "stencil_enabled": True,
                "sitewidehttps_enabled": True,
                "facebook_catalog_id": "",
                "checkout_type": "optimized",
                "wishlists_enabled": False,
                "graphql_storefront_api_enabled": True,
                "shopper_consent_tracking_enabled": False,
                "multi_storefront_enabled": False,
            },
        }
    )


@router.get(V2 + "/time")
async def time(store: StoreDep) -> JSONResponse:
    return JSONResponse({"time": int(store.now().timestamp())})
