"""Saved characters: named sets of reference pictures, with their IP-Adapter embeddings cached.

Why cache per adapter: the embedding depends only on the pictures, their weights and the
adapter's image encoder; storing it (as safetensors) lets every later generation skip the
encoder and reproduce exactly what passing the pictures would give.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from PIL import Image as PILImage
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from limner.core.errors import ConflictError, InvalidRequestError, NotFoundError
from limner.core.requests import MAX_REFERENCES
from limner.db.models import Character, CharacterEmbedding, Image, User, new_id
from limner.engines.local.ip_adapter import ReferenceEmbedding, adapter_name
from limner.services.files import FileStore
from limner.services.gallery import Gallery, PictureSize

CHARACTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class CharacterInputs:
    """What a generation needs from a saved character."""

    images: tuple[PILImage.Image | PictureSize, ...]  # sizes only when a job is only validated
    weights: list[float]
    embeddings: dict[str, ReferenceEmbedding]


class Characters:
    def __init__(self, gallery: Gallery, files: FileStore) -> None:
        self._gallery = gallery
        self._files = files

    def add(
        self,
        session: Session,
        owner: User,
        name: str,
        pictures: list[bytes],
        weights: list[float] | None = None,
        description: str = "",
    ) -> Character:
        """Validate and store the pictures (like any upload) and save the character."""
        if not CHARACTER_NAME.match(name):
            raise InvalidRequestError("1-64 letters, digits, '_', '.' or '-'", param="name")
        if not pictures or len(pictures) > MAX_REFERENCES:
            raise InvalidRequestError(f"give 1 to {MAX_REFERENCES} reference pictures", param="images")
        if weights is not None and (len(weights) != len(pictures) or any(w <= 0 for w in weights)):
            raise InvalidRequestError("one positive weight per picture", param="weights")
        if self.find(session, owner, name) is not None:
            raise ConflictError(f"you already have a character named {name!r}", param="name")
        stored = [
            self._gallery.save_upload(session, owner, data, param=f"images[{i}]") for i, data in enumerate(pictures)
        ]
        character = Character(
            owner_id=owner.id,
            name=name,
            description=description,
            reference_image_ids=[image.id for image in stored],
            reference_weights=weights or [1.0] * len(pictures),
        )
        session.add(character)
        try:
            session.commit()
        except IntegrityError as exc:
            session.rollback()
            raise ConflictError(f"you already have a character named {name!r}", param="name") from exc
        return character

    def find(self, session: Session, owner: User, name_or_id: str) -> Character | None:
        query = select(Character).where(Character.owner_id == owner.id)
        by_name = session.scalar(query.where(Character.name == name_or_id))
        return by_name or session.scalar(query.where(Character.id == name_or_id))

    def get(self, session: Session, owner: User, name_or_id: str) -> Character:
        character = self.find(session, owner, name_or_id)
        if character is None:
            raise NotFoundError(f"no character {name_or_id!r}", param="character")
        return character

    def list_characters(self, session: Session, owner: User) -> list[Character]:
        query = select(Character).where(Character.owner_id == owner.id).order_by(Character.name)
        return list(session.scalars(query).all())

    def delete(self, session: Session, owner: User, name_or_id: str) -> None:
        character = self.get(session, owner, name_or_id)
        embeddings = self._embeddings(session, character)
        image_ids = list(character.reference_image_ids)
        session.delete(character)
        session.commit()
        for embedding in embeddings:
            self._files.delete(embedding.file_key)
        for image_id in image_ids:
            image = session.get(Image, image_id)
            if image is not None:
                self._gallery.delete(session, owner, image_id)

    def cached_adapters(self, session: Session, character: Character) -> list[str]:
        """The adapters this character has a cached embedding for, as users name them."""
        return [adapter_name(embedding.adapter_key) for embedding in self._embeddings(session, character)]

    def inputs(self, session: Session, owner: User, name_or_id: str, decode: bool = True) -> CharacterInputs:
        """The character's pictures and cached embeddings; ``decode=False`` (validating a job): only the
        pictures' sizes, nothing read from the file store."""
        character = self.get(session, owner, name_or_id)
        weights = list(character.reference_weights)
        if not decode:
            sizes = tuple(self._gallery.input_size(session, owner, i) for i in character.reference_image_ids)
            return CharacterInputs(images=sizes, weights=weights, embeddings={})
        images = tuple(
            self._gallery.open_input(session, owner, image_id, "RGB") for image_id in character.reference_image_ids
        )
        embeddings: dict[str, ReferenceEmbedding] = {}
        for row in self._embeddings(session, character):
            tensors = load_tensors(self._files.get(row.file_key))
            embeddings[row.adapter_key] = ReferenceEmbedding(positive=tensors["positive"], negative=tensors["negative"])
        return CharacterInputs(images=images, weights=weights, embeddings=embeddings)

    def remember(self, session: Session, owner: User, name_or_id: str, computed: dict[str, Any]) -> None:
        """Cache embeddings a run computed for this character (ignored when already cached)."""
        character = self.get(session, owner, name_or_id)
        known = {embedding.adapter_key for embedding in self._embeddings(session, character)}
        for adapter_key, embedding in computed.items():
            if adapter_key in known or not isinstance(embedding, ReferenceEmbedding):
                continue
            file_key = f"embeddings/{new_id()}.safetensors"
            data = save_tensors(
                {"positive": embedding.positive.contiguous(), "negative": embedding.negative.contiguous()}
            )
            self._files.put(file_key, data)
            session.add(CharacterEmbedding(character_id=character.id, adapter_key=adapter_key, file_key=file_key))
            try:
                session.commit()
            except IntegrityError:  # a concurrent run cached it first
                session.rollback()
                self._files.delete(file_key)

    def _embeddings(self, session: Session, character: Character) -> list[CharacterEmbedding]:
        query = select(CharacterEmbedding).where(CharacterEmbedding.character_id == character.id)
        return list(session.scalars(query).all())
