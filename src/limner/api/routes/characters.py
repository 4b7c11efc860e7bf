"""Saved characters: reference pictures stored once, usable by name in any job."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool

from limner.api.deps import GeneratorDep, ReaderDep, ServicesDep, SessionDep
from limner.api.responses import AUTHENTICATED, UPLOADS, WITH_BODY, error_responses
from limner.api.schemas import CharacterOut
from limner.core.errors import InvalidRequestError
from limner.db.models import Character, User
from limner.services.container import Services

router = APIRouter(prefix="/v1/characters", tags=["characters"], responses=error_responses(AUTHENTICATED))


def _out(services: Services, session: SessionDep, character: Character) -> CharacterOut:
    return CharacterOut.of(character, services.characters.cached_adapters(session, character))


@router.post("", response_model=CharacterOut, status_code=status.HTTP_201_CREATED,
             summary="Save a character from 1-8 reference pictures",
             responses=error_responses(WITH_BODY, UPLOADS, 409))  # fmt: skip
async def create_character(
    user: GeneratorDep,
    services: ServicesDep,
    name: Annotated[str, Form(min_length=1, max_length=64)],
    images: Annotated[list[UploadFile], File(description="PNG, JPEG or WebP pictures of the character")],
    weights: Annotated[str | None, Form(description="JSON list of one positive weight per picture")] = None,
    description: Annotated[str, Form(max_length=2000)] = "",
) -> CharacterOut:
    pictures = [await upload.read() for upload in images]
    parsed: list[float] | None = None
    if weights:
        try:
            parsed = [float(value) for value in json.loads(weights)]
        except (ValueError, TypeError) as exc:
            raise InvalidRequestError("weights must be a JSON list of numbers", param="weights") from exc
    return await run_in_threadpool(_create, services, user, name, pictures, parsed, description)


def _create(
    services: Services, user: User, name: str, pictures: list[bytes], weights: list[float] | None, description: str
) -> CharacterOut:
    with services.sessions() as session:
        character = services.characters.add(session, user, name, pictures, weights, description)
        return _out(services, session, character)


@router.get("", response_model=list[CharacterOut], summary="My saved characters")
def list_characters(user: ReaderDep, services: ServicesDep, session: SessionDep) -> list[CharacterOut]:
    return [_out(services, session, item) for item in services.characters.list_characters(session, user)]


@router.get("/{name}", response_model=CharacterOut, responses=error_responses(404))
def get_character(name: str, user: ReaderDep, services: ServicesDep, session: SessionDep) -> CharacterOut:
    return _out(services, session, services.characters.get(session, user, name))


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               responses=error_responses(404))  # fmt: skip
def delete_character(name: str, user: GeneratorDep, services: ServicesDep, session: SessionDep) -> Response:
    services.characters.delete(session, user, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
