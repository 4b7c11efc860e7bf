"""The model registry: friendly names for base models, LoRAs and fine-tunes, usable everywhere.

Why a registry: ``--model my-dog`` or ``"model": "my-dog"`` should just work, whether the weights
came from the hub, an imported folder, or a training run. Imports are checked (safetensors only,
headers validated without reading tensors) and copied into the registry's own folder, so a later
change at the source cannot break a registered model.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from limner.core.errors import (
    ConflictError,
    InvalidRequestError,
    ModelDownloadError,
    NotFoundError,
    PermissionDeniedError,
    first_line,
)
from limner.db.models import ModelKind, ModelVisibility, RegisteredModel, User, new_id
from limner.engines.local.model_refs import PICKLE_SUFFIXES
from limner.engines.local.weights_info import describe_weights
from limner.services.generation import ModelLookup, RegisteredName, could_be_registered
from limner.services.model_files import FILES_KEY, FILES_PATH, ModelFiles

HUB_WEIGHT_PATTERNS = ["*.safetensors", "*.json", "*.txt", "*.model", "*.md"]


class ModelRegistry:
    """Registered names and the folder of managed weights; with ``files``, managed weights are also packed
    into the shared file store so that workers on other machines can use them."""

    def __init__(self, models_dir: Path, files: ModelFiles | None = None) -> None:
        self._models_dir = Path(models_dir)
        self._files = files

    @property
    def files(self) -> ModelFiles | None:
        return self._files

    def list_models(self, session: Session, viewer: User | None = None) -> list[RegisteredModel]:
        """Every model (the CLI, admins), or the shared ones and the viewer's own."""
        query = select(RegisteredModel).order_by(RegisteredModel.name)
        if viewer is not None and not viewer.is_admin:
            query = query.where(
                or_(RegisteredModel.visibility == ModelVisibility.SHARED.value, RegisteredModel.created_by == viewer.id)
            )
        return list(session.scalars(query).all())

    def find(self, session: Session, name: str) -> RegisteredModel | None:
        return session.scalar(select(RegisteredModel).where(RegisteredModel.name == name))

    def get(self, session: Session, name: str, viewer: User | None = None) -> RegisteredModel:
        """The named model, if ``viewer`` (None: the local CLI) may see it; others' private models are "not found"."""
        model = self.find(session, name)
        if model is None or (viewer is not None and not model.visible_to(viewer.id, viewer.is_admin)):
            raise NotFoundError(f"no registered model {name!r}", param="name")
        return model

    def set_visibility(self, session: Session, name: str, visibility: ModelVisibility, viewer: User) -> RegisteredModel:
        model = self._owned(session, name, viewer)
        model.visibility = visibility.value
        session.commit()
        return model

    def _owned(self, session: Session, name: str, viewer: User | None) -> RegisteredModel:
        model = self.get(session, name, viewer)
        if viewer is not None and not viewer.is_admin and model.created_by != viewer.id:
            raise PermissionDeniedError(f"only its owner or an admin can change the model {name!r}")
        return model

    def register(
        self,
        session: Session,
        name: str,
        reference: str,
        *,
        kind: ModelKind,
        architecture: str,
        base_model: str | None = None,
        managed_path: Path | None = None,
        size_bytes: int = 0,
        details: dict[str, Any] | None = None,
        created_by: str | None = None,
        visibility: ModelVisibility = ModelVisibility.SHARED,
    ) -> RegisteredModel:
        self.check_name(session, name)
        model_id = new_id()
        details = dict(details or {})
        if managed_path is not None and self._files is not None:
            details |= self._files.publish(model_id, Path(managed_path), Path(reference))
        model = RegisteredModel(
            id=model_id, name=name, kind=kind.value, reference=reference, base_model=base_model,
            architecture=architecture, managed_path=str(managed_path) if managed_path else None,
            size_bytes=size_bytes, details=details, created_by=created_by, visibility=visibility.value,
        )  # fmt: skip
        session.add(model)
        try:
            session.commit()
        except IntegrityError as exc:
            session.rollback()
            self._delete_files(details)
            raise ConflictError(f"a model named {name!r} is already registered", param="name") from exc
        return model

    def _delete_files(self, details: dict[str, Any]) -> None:
        if self._files is not None and details.get(FILES_KEY):
            self._files.delete(str(details[FILES_KEY]))

    def import_path(
        self,
        session: Session,
        path: Path,
        name: str,
        *,
        base_model: str | None = None,
        created_by: str | None = None,
    ) -> RegisteredModel:
        """Check and copy a diffusers folder or a .safetensors file (base model or LoRA) into the registry."""
        self.check_name(session, name)
        path = path.expanduser()
        if not path.exists():
            raise InvalidRequestError(f"no such file or folder: {path}", param="path")
        info = describe_weights(path)
        target = self._models_dir / name
        if target.exists():
            raise ConflictError(f"{target} already exists; remove it or pick another name", param="name")
        target.mkdir(parents=True)
        try:
            if path.is_dir():
                shutil.copytree(path, target, dirs_exist_ok=True, ignore=_ignore_pickles, symlinks=False)
                reference = str(target)
            else:
                shutil.copy2(path, target / path.name)
                reference = str(target / path.name)
            kind = ModelKind.LORA if info.kind == "lora" else ModelKind.BASE
            return self.register(
                session, name, reference, kind=kind, architecture=info.architecture, base_model=base_model,
                managed_path=target, size_bytes=info.size_bytes, details={"imported_from": str(path)},
                created_by=created_by,
            )  # fmt: skip
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise

    def install(
        self, session: Session, hub_id: str, name: str | None = None, *, created_by: str | None = None
    ) -> RegisteredModel:
        """Download a hub repo's safetensors weights and configs into the Hugging Face cache and register it."""
        from huggingface_hub import snapshot_download

        parts = hub_id.split("/")
        if len(parts) != 2 or not all(parts) or ".." in hub_id:
            raise InvalidRequestError("a hub id is 'owner/name'", param="hub_id")
        name = name or parts[1]
        self.check_name(session, name)
        try:
            folder = Path(snapshot_download(hub_id, allow_patterns=HUB_WEIGHT_PATTERNS))
        except Exception as exc:  # huggingface_hub raises many kinds; all mean "could not download"
            reason = first_line(exc)
            raise ModelDownloadError(f"could not download {hub_id}: {reason[:300]}", param="hub_id") from exc
        if (folder / "model_index.json").is_file():
            info = describe_weights(folder)
            reference, kind = hub_id, ModelKind.BASE
        else:
            files = sorted(folder.glob("*.safetensors"))
            if len(files) != 1:
                raise InvalidRequestError(
                    f"{hub_id} is neither a diffusers model nor a single-file LoRA ({len(files)} safetensors files)",
                    param="hub_id",
                )
            info = describe_weights(files[0])
            reference = f"{hub_id}/{files[0].name}"
            kind = ModelKind.LORA if info.kind == "lora" else ModelKind.BASE
        return self.register(session, name, reference, kind=kind, architecture=info.architecture,
                             size_bytes=info.size_bytes, details={"hub_id": hub_id}, created_by=created_by)  # fmt: skip

    def remove(self, session: Session, name: str, viewer: User | None = None) -> None:
        """Delete a model and its managed files: its owner or an admin (``viewer`` None: the local CLI)."""
        model = self._owned(session, name, viewer)
        managed = Path(model.managed_path) if model.managed_path else None
        details = dict(model.details or {})
        session.delete(model)
        session.commit()
        self._delete_files(details)
        if managed is not None and managed.resolve().is_relative_to(self._models_dir.resolve()):
            shutil.rmtree(managed, ignore_errors=True)

    def managed_folder(self, name: str) -> Path:
        return self._models_dir / name

    def check_name(self, session: Session, name: str) -> None:
        """Refuse a malformed, built-in or taken name (before a long job that would register it)."""
        if not could_be_registered(name):
            raise InvalidRequestError("1-64 letters, digits, '_', '.' or '-', not a built-in name", param="name")
        if self.find(session, name) is not None:
            raise ConflictError(f"a model named {name!r} is already registered", param="name")


def _ignore_pickles(_folder: str, names: list[str]) -> set[str]:
    return {name for name in names if Path(name).suffix.lower() in PICKLE_SUFFIXES}


def registry_lookup(registry: ModelRegistry, sessions: sessionmaker[Session]) -> ModelLookup:
    """The generation service's view of the registry: a registered name -> its weights (and base)."""

    def lookup(name: str) -> RegisteredName | None:
        if not could_be_registered(name):
            return None
        with sessions() as session:
            model = registry.find(session, name)
            if model is None:
                return None
            is_lora = model.kind == ModelKind.LORA.value
            shared = model.visibility == ModelVisibility.SHARED.value
            details = model.details or {}
            return RegisteredName(
                model.name, model.reference, is_lora=is_lora, base_model=model.base_model,
                owner_id=model.created_by, shared=shared, files_key=details.get(FILES_KEY),
                files_path=details.get(FILES_PATH),
            )  # fmt: skip

    return lookup
