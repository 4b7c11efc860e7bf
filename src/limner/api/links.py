"""Absolute, signed links to images, for clients that download them without credentials.

Why absolute: OpenAI clients fetch ``data[].url`` as is. The base is the admin's public URL when
set (behind a proxy the request's own base may be an internal address), else the request's.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request

from limner.services.auth.signed_urls import ImageLinks
from limner.services.container import Services


def image_links(services: Services) -> ImageLinks:
    return services.tokens.image_links(services.settings.signed_url_seconds)


def base_url(services: Services, request: Request) -> str:
    """The server's public base URL, without a trailing slash."""
    return (services.settings.public_url or str(request.base_url)).rstrip("/")


def signed_image_url(links: ImageLinks, base: str, image_id: str) -> str:
    expires, signature = links.issue(image_id)
    return f"{base}/v1/images/{image_id}/signed?{urlencode({'expires': expires, 'signature': signature})}"
